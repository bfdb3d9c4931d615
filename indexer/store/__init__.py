"""The index on disk: opening the DuckDB file, its schema and migrations, data rows, file_index
tracking and the log tables. Imports nothing of the pipeline, the sources or the interfaces.
"""
