"""The walk shared by threads: the same stamps as the walk on one thread, whatever the threads
do. Real trees under tmp_path (odd names, links, ignored names), real threads listing with the
C lister."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from indexer import listing, parallel_walk
from indexer.kinds import FileKey
from indexer.listing import NativeLister, NativeWalk
from indexer.outcome import FileStamp
from indexer.parallel_walk import walk_parallel
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.reconcile_report import ReconcileReport
from indexer.pipeline.reconciler import Reconciler, ReconcilerConfig
from indexer.scan import scan_tree, walk_columns, walk_files
from indexer.store.tracking import FileTracker
from tests.helpers import write

pytestmark = pytest.mark.skipif(
    not listing.native_listing(), reason="the C library is not built: the walk stays on one thread"
)

Row = tuple[str, int, int]


def rows(chunks: Iterable[pa.RecordBatch]) -> list[Row]:
    out: list[Row] = []
    for batch in chunks:
        paths, mtimes, sizes = (column.to_pylist() for column in batch.columns)
        out.extend(zip(paths, mtimes, sizes, strict=True))
    return out


def walking_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ocindex-walk-")]


@pytest.fixture
def tree(storage_root: Path) -> Path:
    """120 folders of 1 to 5 files, odd names, links and ignored names among them."""
    for m in range(120):
        for p in range(m % 5 + 1):
            write(storage_root, f"part/msg_{m:03d}/prt_{p}.json", b"{}" * (p + 1))
    write(storage_root, "session/proj/ses_1.json", b"{}")
    write(storage_root, "project/top.json", b"{}")
    write(storage_root, "part/msg_001/.hidden.json", b"{}")
    write(storage_root, "part/msg_002/prt_9.json.tmp", b"{}")
    write(storage_root, "quarantine/prt_5.json", b"{}")
    os.makedirs(os.fsencode(storage_root / "part" / "msg_\xe9"))
    (storage_root / "part" / "msg_\xe9" / os.fsdecode(b"prt_\xff.json")).write_bytes(b"{}")
    (storage_root / "part" / "msg_003" / "link.json").symlink_to(storage_root / "project")
    return storage_root


def test_a_walk_shared_by_threads_yields_the_same_stamps_as_the_walk_on_one(tree: Path) -> None:
    alone = sorted(rows(walk_columns(tree, links=True)))
    assert len(alone) == 360 + 2 + 1 + 1  # parts, session, project, the odd name, the link
    for threads in (2, 3):
        shared = rows(walk_parallel(tree, links=True, chunk_rows=50, threads=threads))
        assert sorted(shared) == alone and len(shared) == len(set(shared))
    assert sorted(rows(walk_parallel(tree, links=False, threads=2))) == sorted(
        rows(walk_columns(tree))
    )
    assert walking_threads() == []


def test_shared_walk_chunks_stay_near_their_size(tree: Path) -> None:
    chunks = list(walk_parallel(tree, links=True, chunk_rows=40, threads=2))
    assert len(chunks) >= 8
    assert all(chunk.num_rows < 40 + 10 for chunk in chunks)  # a folder of a few files over


def test_without_the_c_lister_the_walk_stays_on_one_thread(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = sorted(rows(walk_columns(tree, links=True)))
    monkeypatch.setattr(listing, "_LIBRARY", None)
    walk = walk_parallel(tree, links=True, chunk_rows=5, threads=2)
    first = next(walk)
    assert walking_threads() == []  # the Python lister would only queue its threads for the GIL
    assert sorted(rows([first, *walk])) == alone


def test_a_walk_left_before_its_end_stops_its_threads(tree: Path) -> None:
    walk = walk_parallel(tree, links=True, chunk_rows=5, threads=3)
    next(walk)
    assert len(walking_threads()) <= 3
    walk.close()
    assert walking_threads() == []


def test_a_thread_that_raises_ends_the_walk_with_its_error(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = listing.NativeLister.list_walk
    calls: list[int] = []

    def list_walk(self: listing.NativeLister, walk: listing.NativeWalk, rows: int) -> bool:
        calls.append(rows)
        if len(calls) == 4:
            raise MemoryError("no room for the buffers")
        return listed(self, walk, rows)

    monkeypatch.setattr(listing.NativeLister, "list_walk", list_walk)
    with pytest.raises(MemoryError, match="no room"):
        rows(walk_parallel(tree, links=True, chunk_rows=5, threads=2))
    assert walking_threads() == []


def test_a_folder_the_c_walk_hands_back_is_listed_in_python_with_its_subfolders(
    storage_root: Path,
) -> None:
    # Names that are not ASCII, and a folder of more rows than the buffers hold at first.
    write(storage_root, "session/caf\xe9/ses_1.json", b"{}")
    write(storage_root, "session/caf\xe9/deeper/ses_2.json", b"{}")
    os.makedirs(os.fsencode(storage_root / "part" / os.fsdecode(b"msg_\xff")))
    (storage_root / "part" / os.fsdecode(b"msg_\xff") / "prt_1.json").write_bytes(b"{}")
    for p in range(300):
        write(storage_root, f"part/msg_big/prt_{p:03d}.json", b"{}")
    write(storage_root, "quarantine/prt_5.json", b"{}")
    write(storage_root, "part/quarantine/prt_6.json", b"{}")  # only the top level's is left out
    alone = sorted(rows(walk_columns(storage_root, links=True)))
    assert len(alone) == 2 + 1 + 300 + 1
    for threads in (1, 2):
        shared = rows(walk_parallel(storage_root, links=True, chunk_rows=50, threads=threads))
        assert sorted(shared) == alone and len(shared) == len(set(shared))
    assert walking_threads() == []


def test_a_folder_of_more_subfolders_than_the_buffers_hold_stays_in_c(
    storage_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for m in range(2000):  # ~90 KB of subfolders' names, a long history's part/
        write(storage_root, f"part/msg_{m:05d}_{'y' * 30}/prt_1.json", b"{}")
    handed: list[int | None] = []
    to_python = NativeWalk.list_handed

    def hand(walk: NativeWalk, lister: NativeLister, folder: int | None) -> None:
        handed.append(folder)
        to_python(walk, lister, folder)

    monkeypatch.setattr(NativeWalk, "list_handed", hand)
    alone = sorted(rows(walk_columns(storage_root, links=True)))
    assert len(alone) == 2000
    for threads in (1, 2):
        shared = rows(walk_parallel(storage_root, links=True, chunk_rows=500, threads=threads))
        assert sorted(shared) == alone and len(shared) == len(set(shared))
    assert handed == []  # the C walk grew its buffer of names; Python listed nothing
    assert walking_threads() == []


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The threads of every walk started from now on."""
    walks: list[int] = []

    class SharedWalk(parallel_walk._SharedWalk):
        def chunks(self, threads: int) -> Iterator[pa.RecordBatch]:
            walks.append(threads)
            return super().chunks(threads)

    monkeypatch.setattr(parallel_walk, "_SharedWalk", SharedWalk)
    return walks


def test_a_reconcile_of_a_big_tree_walks_it_shared_and_finds_what_changed(
    tree: Path, index_db: duckdb.DuckDBPyConnection, started: list[int]
) -> None:
    stats = list(scan_tree(tree))
    FileTracker(index_db, "v2").mark_indexed([(s.key, s.stamp, "h") for s in stats])
    (tree / "part" / "msg_010" / "prt_0.json").unlink()
    write(tree, "part/msg_011/prt_1.json", b"{} ")
    write(tree, "part/msg_999/prt_0.json", b"{}")

    def scan(threads: int) -> ReconcileReport:
        config = ReconcilerConfig(walk_threads=threads, parallel_walk_min_files=100)
        return Reconciler(tree, index_db.cursor, lambda *_: None, set, config).scan_now()

    alone = scan(1)  # the link is new: scanned, never indexed
    assert started == [1]
    shared = scan(2)  # file_index holds 363 rows: big enough
    assert started == [1, 2]
    assert sorted(shared.new) == ["part/msg_003/link.json", "part/msg_999/prt_0.json"]
    assert (shared.modified, shared.deleted) == (
        ("part/msg_011/prt_1.json",),
        ("part/msg_010/prt_0.json",),
    )
    assert (shared.files_seen, shared.new, shared.modified, shared.deleted) == (
        alone.files_seen,
        alone.new,
        alone.modified,
        alone.deleted,
    )


def test_a_walk_without_stamps_yields_the_same_paths_with_null_stamps(tree: Path) -> None:
    alone = sorted(rows(walk_columns(tree, links=True)))
    for threads in (1, 2):
        paths = rows(walk_parallel(tree, links=True, chunk_rows=50, threads=threads, stamps=False))
        assert sorted(path for path, _, _ in paths) == [path for path, _, _ in alone]
        # The one folder C hands to Python (a name that is not ASCII) keeps its stamps.
        stamped = {path for path, mtime, size in paths if (mtime, size) != (None, None)}
        assert stamped == {"part/msg_\xe9/prt_\\xff.json"}
    assert walking_threads() == []


def test_a_first_catch_up_walks_without_stamps_and_a_reconcile_with_them(
    tree: Path, index_db: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []

    class SharedWalk(parallel_walk._SharedWalk):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            asked.append(self._stamps)

    monkeypatch.setattr(parallel_walk, "_SharedWalk", SharedWalk)
    config = ReconcilerConfig(walk_threads=2, parallel_walk_min_files=100)
    submitted: list[FileKey] = []
    reconciler = Reconciler(
        tree, index_db.cursor, lambda keys, _: submitted.extend(keys), set, config
    )
    first = reconciler.scan_now(Trigger.STARTUP)  # an empty index: every file is read, stamped
    assert len(first.new) == len(submitted) == 364
    stamps = {rel: FileStamp(mtime_ns, size) for rel, mtime_ns, size in walk_files(tree, True)}
    FileTracker(index_db, "v2").mark_indexed([(k, stamps[k.rel_path], "h") for k in submitted])
    assert reconciler.scan_now().findings == 0  # stamps compared: none differs
    assert asked == [False, True]


def test_the_first_catch_up_of_an_empty_index_is_walked_shared(
    tree: Path, index_db: duckdb.DuckDBPyConnection, started: list[int]
) -> None:
    config = ReconcilerConfig(walk_threads=2)  # 10,000 files at least, once the size is known
    reconciler = Reconciler(tree, index_db.cursor, lambda *_: None, set, config)
    first = reconciler.scan_now()
    assert started == [2] and len(first.new) == 364  # its size unknown: shared
    reconciler.scan_now()
    assert started == [2, 1]  # 364 files: on one thread from then on


def test_on_files_is_called_once_from_the_walk_when_it_has_listed_that_many(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = sorted(rows(walk_parallel(tree, links=True, threads=2)))
    calls: list[str] = []

    def called() -> None:
        calls.append(threading.current_thread().name)

    walked = rows(walk_parallel(tree, True, 50, 2, on_files=(len(whole) // 2, called)))
    assert sorted(walked) == whole
    assert len(calls) == 1 and calls[0].startswith("ocindex-walk-")
    calls.clear()
    rows(walk_parallel(tree, True, 50, 2, on_files=(len(whole) + 1, called)))
    assert calls == []  # a smaller tree than the count: never called

    def fails() -> None:
        raise RuntimeError("a call that fails")

    # The call is a head start only: if it fails, the walk says so and goes on.
    assert sorted(rows(walk_parallel(tree, True, 50, 2, on_files=(1, fails)))) == whole
    assert "a call that fails" in caplog.text
