"""What a store writer has landed: each row as OpenCode now holds it, and the JSON files beside
the store, for tests to compare with the index. Never writes a database itself."""

from __future__ import annotations

import sqlite3
import threading

from indexer.simulate.json_writer import JsonWriter


class StoreLedger:
    """The base of the store writers. expected_rows() and expected_files() are safe from any
    thread; the rest runs on the writing thread."""

    _db: sqlite3.Connection | None

    def __init__(self, files: JsonWriter) -> None:
        self.files = files
        self.tally = files.tally  # one count for rows and session_diff files
        self._rows: dict[str, bytes] = {}  # "<table>/<id>" -> the record as OpenCode holds it
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection (SQLite then checkpoints and removes the -wal, as OpenCode's
        exit does)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def expected_rows(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._rows)

    def expected_files(self) -> dict[str, bytes]:
        return self.files.expected_files()

    def _keep(self, key: str, record: bytes | None) -> bool:
        """Remember what a row now holds (None: gone); True when the row is new."""
        with self._lock:
            new = key not in self._rows
            if record is None:
                self._rows.pop(key, None)
            else:
                self._rows[key] = record
        return new
