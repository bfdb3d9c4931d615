"""Change sources beside the JSON tree: the protocol they fulfil, and OpenCode's SQLite store."""
