"""The contract a second source of records (OpenCode's SQLite store) fulfils to ride the same
pipeline as the JSON files. Never implements a source itself: it is the seam.

A source names its records with keys whose rel_path starts with its prefix, so they dedup,
batch, track (file_index), reconcile and show in the dashboard exactly like files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from indexer.kinds import FileKey, FileKind

if TYPE_CHECKING:  # a reading worker imports this module, and never needs DuckDB
    import duckdb

    from indexer.outcome import FileRead
    from indexer.pipeline.accumulator import Trigger

Submit = Callable[[list[FileKey], "Trigger"], None]


class RecordReader(Protocol):
    def read(self, keys: Sequence[FileKey]) -> list[FileRead]:
        """One FileRead per key, in any order."""
        ...


class PortableReader(Protocol):
    """What another process (a reading worker) needs to read a source's records itself:
    picklable, hashable, and opened there once."""

    def open(self) -> RecordReader: ...


class ChangeSource(Protocol):
    prefix: str
    """Every key of this source has a rel_path starting with this, e.g. 'sqlite:'."""
    name: str

    def stamps(self) -> pa.Table | None:
        """(path, mtime_ns, size) of every record, as the reconciler compares them; None while
        the source is unavailable (locked, mid-migration), so none of its rows is judged gone."""
        ...

    def key_for(self, path: str) -> FileKey | None:
        """The key of one of this source's paths (as stored in file_index)."""
        ...

    def read(self, keys: Sequence[FileKey]) -> list[FileRead]:
        """Read and parse these records now, one FileRead each (DELETED when a row is gone)."""
        ...

    def write_progress(self, conn: duckdb.DuckDBPyConnection, reads: Sequence[FileRead]) -> None:
        """Record progress (watermarks) inside the batch's transaction."""
        ...

    def start(self, submit: Submit) -> None:
        """Begin watching for changes; submit keys as they are found."""
        ...

    def stop(self) -> None: ...

    def portable_reader(self) -> PortableReader | None:
        """How a worker process reads this source's records itself; None: only here."""
        ...

    def supersedes(self) -> frozenset[FileKind]:
        """The kinds this source now holds with authority: their copies anywhere else (the JSON
        tree, legacy trees) are history, indexed from here only. Empty for most sources."""
        ...

    def describe(self) -> dict[str, object]:
        """Status for `ocindex status` and the dashboard."""
        ...


def owner_of(path: str, sources: Sequence[ChangeSource]) -> ChangeSource | None:
    for source in sources:
        if path.startswith(source.prefix):
            return source
    return None
