"""The four panes of the main screen and its status header, one module each.
Never calls the engine: each pane is handed a snapshot through its one verb, `show(snapshot)`.
"""
