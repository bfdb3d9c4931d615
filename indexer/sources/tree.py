"""TreeSource, the ChangeSource over one legacy `<data dir>/project/<id>/storage` JSON tree that
older OpenCode kept, and their discovery. Never writes a tree and never watches one.

Each file of a tree is read exactly as a file under the storage root is (indexer.pipeline.reader)
and stamped by the one tree walk (indexer.scan); only its key carries the tree's prefix.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa

from indexer.kinds import FileKey, FileKind, classify, is_source_path
from indexer.outcome import FileRead
from indexer.pipeline.reader import ProcessorConfig, read_file
from indexer.scan import walk_files
from indexer.sources.base import Submit
from indexer.sources.sqlite import SourceState

_STAMPS = pa.schema([("path", pa.string()), ("mtime_ns", pa.int64()), ("size", pa.int64())])


def discover_legacy_trees(storage_root: Path) -> list[Path]:
    """Every `<storage_root>/../project/*/storage` folder, by project id; never the root itself."""
    root = Path(storage_root).expanduser()
    projects = root.parent / "project"
    try:
        found = [p / "storage" for p in projects.iterdir() if (p / "storage").is_dir()]
    except OSError:
        return []
    here = _identity(root)
    return sorted((p for p in found if _identity(p) != here), key=lambda p: p.parent.name)


def tree_prefix(tree: Path, taken: Iterable[str] = ()) -> str:
    """`legacy:<project id>:`, made unique among `taken` by a short hash of the full path.

    The project id is the tree's parent folder's name, each character outside [A-Za-z0-9._-]
    replaced, so the prefix holds no quote, slash or colon of its own (it goes into SQL literals).
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(tree).parent.name) or "project"
    prefix = f"legacy:{name}:"
    if prefix in set(taken):
        digest = hashlib.blake2b(os.fsencode(Path(tree).absolute()), digest_size=3).hexdigest()
        prefix = f"legacy:{name}~{digest}:"
    return prefix


class TreeSource:
    """A ChangeSource over one legacy JSON tree. No OpenCode writes these trees any more, so
    start() watches nothing: the reconciler's periodic scan (stamps()) finds any change.
    stamps() and read() are safe from any thread."""

    def __init__(
        self,
        root: Path,
        *,
        prefix: str | None = None,
        config: ProcessorConfig | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root).expanduser()
        self.prefix = prefix or tree_prefix(self.root)
        if not is_source_path(self.prefix) or "'" in self.prefix:
            raise ValueError(f"a source prefix must start with [a-z]+: ({self.prefix!r})")
        self.name = self.prefix.rstrip(":")
        self.project_id = self.root.parent.name
        self.config = config or ProcessorConfig()
        self._wall = wall
        self._lock = threading.Lock()
        self._state = SourceState.STARTING
        self._message = ""
        self._files: dict[str, int] = {}
        self.scans = 0

    def __repr__(self) -> str:
        return f"TreeSource({str(self.root)!r}, prefix={self.prefix!r})"

    # --- ChangeSource --------------------------------------------------------------------

    def key_for(self, path: str) -> FileKey | None:
        """The key of `<prefix><path in the tree>` by the storage root's layouts (SKIPPED for a
        file that is no record). A session's parent is the tree's project, as its folder says."""
        if not path.startswith(self.prefix):
            return None
        key = classify(path[len(self.prefix) :])
        if key is None:
            return None
        if key.kind is FileKind.SESSION:
            if key.parent_id:
                # A tree keeps sessions in session/info/ only.
                return FileKey(self.prefix + key.rel_path, FileKind.SKIPPED)
            key = replace(key, parent_id=self.project_id)
        return replace(key, rel_path=self.prefix + key.rel_path)

    def stamps(self) -> pa.Table | None:
        """(prefixed path, mtime_ns, size) of every file; empty when the tree is gone (its rows
        then go too), None when its folder cannot be listed (none judged gone)."""
        try:
            with os.scandir(self.root):
                pass
        except (FileNotFoundError, NotADirectoryError):
            self._set(SourceState.MISSING, f"{self.root} is gone", {})
            return pa.Table.from_pylist([], _STAMPS)
        except OSError as exc:
            self._set(SourceState.UNREADABLE, f"{self.root}: {exc.strerror or exc}", None)
            return None
        paths: list[str] = []
        mtimes: list[int] = []
        sizes: list[int] = []
        kinds: Counter[str] = Counter()
        for rel, mtime_ns, size in walk_files(self.root):
            paths.append(self.prefix + rel)
            mtimes.append(mtime_ns)
            sizes.append(size)
            key = self.key_for(paths[-1])
            if key is not None:
                kinds[str(key.kind)] += 1
        self._set(SourceState.OK, "", dict(sorted(kinds.items())))
        return pa.Table.from_pydict({"path": paths, "mtime_ns": mtimes, "size": sizes}, _STAMPS)

    def read(self, keys: Sequence[FileKey]) -> list[FileRead]:
        """One FileRead per key, read and decided as the same file under the storage root is."""
        reads = []
        for key in keys:
            inner = replace(key, rel_path=key.rel_path[len(self.prefix) :])
            read = read_file(self.root, inner, self.config, 0, self._wall)
            reads.append(replace(read, key=key))
        return reads

    def write_progress(self, conn: duckdb.DuckDBPyConnection, reads: Sequence[FileRead]) -> None:
        """Nothing: file_index's stamps are this source's whole progress."""

    def start(self, submit: Submit) -> None:
        """Nothing to watch: the tree is frozen, and the reconciler's scans cover it."""

    def stop(self) -> None:
        """Nothing runs."""

    def portable_reader(self) -> None:
        return None  # a legacy tree is small and read once: not worth a worker's round trip

    def supersedes(self) -> frozenset[FileKind]:
        return frozenset()  # old JSON is never the authority over anything

    def describe(self) -> dict[str, object]:
        with self._lock:
            state, message, files = self._state, self._message, dict(self._files)
        return {
            "name": self.name,
            "kind": "tree",
            "path": str(self.root),
            "prefix": self.prefix,
            "state": str(state),
            "message": message,
            "watching": False,
            "files": files,
            "scans": self.scans,
        }

    # --- beyond the protocol -------------------------------------------------------------

    def probe(self) -> dict[str, object]:
        """List the tree now (for `ocindex status`), then describe."""
        self.stamps()
        return self.describe()

    @property
    def state(self) -> SourceState:
        return self._state

    def _set(self, state: SourceState, message: str, files: dict[str, int] | None) -> None:
        with self._lock:
            self._state, self._message = state, message
            if files is not None:
                self._files = files
            self.scans += 1


def make_tree_sources(
    trees: Sequence[Path], *, config: ProcessorConfig | None = None
) -> list[TreeSource]:
    """One TreeSource per tree, each with its own prefix."""
    sources: list[TreeSource] = []
    seen: set[Path] = set()
    for tree in trees:
        ident = _identity(Path(tree))
        if ident in seen:
            continue
        seen.add(ident)
        prefix = tree_prefix(tree, [s.prefix for s in sources])
        sources.append(TreeSource(tree, prefix=prefix, config=config))
    return sources


def _identity(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except OSError:
        return path.expanduser().absolute()
