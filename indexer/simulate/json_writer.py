"""Lands writes as files under the storage root, the way OpenCode's Storage.write does, and keeps
the ledger of what every file should hold. Never decides content: the story and faults do."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from indexer.simulate.report import Tally


class JsonWriter:
    """write() and delete() run on the simulating thread; expected_files() is safe from any."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tally = Tally()
        self._files: dict[str, bytes] = {}  # the ledger: last bytes of every existing file
        self._lock = threading.Lock()
        self._dirs: set[str] = set()

    def write(self, rel: str, data: bytes, now_ms: int) -> None:
        """mkdir -p, then truncate and write in place. now_ms: files carry their own times."""
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"refusing to write outside the storage root: {rel}")
        folder = rel.rpartition("/")[0]
        if folder not in self._dirs:  # remember made folders: one mkdir -p per folder is enough
            os.makedirs(os.path.join(self.root, folder), exist_ok=True)
            self._dirs.add(folder)
        fd = os.open(os.path.join(self.root, rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        new = rel not in self._files
        with self._lock:
            self._files[rel] = data
        self.tally.wrote(rel, new)

    def settle(self, rel_paths: tuple[str, ...]) -> None:
        """Finished sessions' files stay: OpenCode ≤ 1.1 never removed them."""

    def holds(self, rel: str) -> bool:
        return rel in self._files

    def delete(self, rel: str) -> bool:
        """Remove a file and its ledger entry, unannounced; False when there was none."""
        with self._lock:
            had = self._files.pop(rel, None) is not None
        if had:
            os.remove(os.path.join(self.root, rel))
        return had

    def expected_files(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._files)
