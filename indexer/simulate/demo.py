"""The demo's live activity: JSON files (with faults) under a root and an OpenCode 2.x store
beside it, written on background threads until stop(). Never indexes anything itself."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from indexer.simulate.simulator import OpenCodeSimulator, SqliteSimulator

FOREVER_S = 365 * 86400.0  # the demo writes until it is stopped


class DemoWriter:
    """Construct it before the engine starts (the store it creates is then found), start() it
    after. start() and stop() are called from one thread; the writing runs on daemon threads,
    and the store is closed on its own thread once both writers are done."""

    def __init__(
        self,
        root: Path,
        rate_files_per_s: float = 60.0,
        *,
        json_seed: int = 1,
        sqlite_seed: int | None = 2,
        generation: str = "2.x",
    ) -> None:
        """sqlite_seed None writes JSON files only; otherwise the store is root/../opencode.db,
        of `generation` (see SqliteSimulator; 2.x, as OpenCode writes today, by default)."""
        self.root = root
        self._rate = rate_files_per_s
        self._stop = threading.Event()
        self._json = OpenCodeSimulator(root, seed=json_seed, faults=True)
        self._store = (
            None
            if sqlite_seed is None
            else SqliteSimulator(root, seed=sqlite_seed, generation=generation)
        )
        self._thread: threading.Thread | None = None  # the one stop() joins

    @classmethod
    def in_new_folder(cls, rate_files_per_s: float = 60.0) -> DemoWriter:
        """A writer on a fresh temporary folder: the root is folder/storage. The caller removes
        the folder once everything reading it is closed."""
        folder = Path(tempfile.mkdtemp(prefix="ocindex-demo-"))
        root = folder / "storage"
        root.mkdir()
        return cls(root, rate_files_per_s)

    @property
    def folder(self) -> Path:
        """The folder holding the root and the store."""
        return self.root.parent

    def start(self) -> None:
        json_thread = threading.Thread(
            target=self._json.run,
            args=(self._rate, FOREVER_S, self._stop),
            name="ocindex-demo",
            daemon=True,
        )
        json_thread.start()
        self._thread = json_thread
        if self._store is not None:
            self._thread = threading.Thread(
                target=self._write_store,
                args=(self._store, json_thread),
                name="ocindex-demo-sqlite",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop writing and wait up to timeout_s; a writer never started just closes its store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        elif self._store is not None:
            self._store.close()

    def _write_store(self, store: SqliteSimulator, json_thread: threading.Thread) -> None:
        # One thread for stop() to join: the SQLite writer, then the JSON one, then the close.
        try:
            store.run(self._rate, FOREVER_S, self._stop)
        finally:
            json_thread.join()
            store.close()
