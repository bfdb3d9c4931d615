"""The index while it is live: a read-only query endpoint in every long-running ocindex process
(server), the way any command reaches it or the file (client). Never imports the TUI.
"""
