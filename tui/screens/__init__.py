"""The screens pushed over the main one: A/B view, help, confirmation, error detail.
Never calls the engine from the UI thread: the A/B view fetches its figures in a worker.
"""
