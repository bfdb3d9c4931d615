"""ocindex's headless indexer: OpenCode storage into DuckDB, in micro-batches, missing nothing.
Never imports Textual or the tui package.
"""
