"""The walk shared with helper processes: the same stamps as the walk on one core, whatever the
helpers do. Real trees under tmp_path, real `python -m indexer.parallel_walk` subprocesses, and
helpers that cannot start or die part way (a stand-in interpreter that is a real program)."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from indexer import parallel_walk
from indexer.config import child_env
from indexer.parallel_walk import walk_parallel
from indexer.pipeline.reconciler import Reconciler, ReconcilerConfig, ReconcileReport
from indexer.scan import scan_tree, walk_columns
from indexer.store.tracking import FileTracker
from tests.helpers import children_running, wait_until, write

Row = tuple[str, int, int]


def rows(chunks: Iterable[pa.RecordBatch]) -> list[Row]:
    out: list[Row] = []
    for batch in chunks:
        paths, mtimes, sizes = (column.to_pylist() for column in batch.columns)
        out.extend(zip(paths, mtimes, sizes, strict=True))
    return out


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


def test_shared_walk_yields_the_same_stamps_as_the_walk_on_one_core(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel_walk, "FOLDERS_PER_PROCESS", 4)  # shares of many folders
    alone = sorted(rows(walk_columns(tree, links=True)))
    assert len(alone) == 360 + 2 + 1 + 1  # parts, session, project, the odd name, the link
    for processes in (2, 3):
        shared = rows(walk_parallel(tree, links=True, chunk_rows=50, processes=processes))
        assert sorted(shared) == alone and len(shared) == len(set(shared))
    assert sorted(rows(walk_parallel(tree, links=False, processes=2))) == sorted(
        rows(walk_columns(tree))
    )


def test_shared_walk_chunks_stay_near_their_size(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel_walk, "FOLDERS_PER_PROCESS", 4)
    chunks = list(walk_parallel(tree, links=True, chunk_rows=40, processes=2))
    assert len(chunks) >= 8
    assert all(chunk.num_rows < 40 + 10 for chunk in chunks)  # a subtree of a few files over


def _stand_in(tmp_path: Path, script: str) -> str:
    """An executable standing in for the interpreter the helpers are started with."""
    path = tmp_path / "python-stand-in"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_helper_that_cannot_start_leaves_its_folders_to_this_process(
    tree: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", str(tree / "no-such-python"))
    shared = rows(walk_parallel(tree, links=True, processes=2))
    assert sorted(shared) == sorted(rows(walk_columns(tree, links=True)))
    assert "a helper process could not start" in caplog.text


@pytest.mark.parametrize("writes", [6, 9], ids=["after-a-chunk", "within-a-chunk"])
def test_a_helper_that_dies_at_once_or_part_way_loses_nothing_and_lists_nothing_twice(
    tree: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    writes: int,
) -> None:
    monkeypatch.setattr(parallel_walk, "FOLDERS_PER_PROCESS", 8)
    alone = sorted(rows(walk_columns(tree, links=True)))
    python = sys.executable
    monkeypatch.setattr(sys, "executable", _stand_in(tmp_path, "echo 'out of luck' >&2; exit 3"))
    with caplog.at_level(logging.WARNING):
        assert sorted(rows(walk_parallel(tree, links=True, processes=2))) == alone
    assert "out of luck" in caplog.text
    # A real helper killed after a chunk of whole folders or within the next: a chunk is six
    # writes (folders walked, count of batches: each a length then data; then the batch's).
    dies = (
        "import os, marshal, sys\n"
        "from indexer import parallel_walk as w\n"
        "class Sink:\n"
        "    sent = 0\n"
        "    def write(self, b):\n"
        f"        if Sink.sent == {writes}: os.kill(os.getpid(), 9)\n"
        "        Sink.sent += 1; sys.stdout.buffer.write(b); sys.stdout.buffer.flush()\n"
        "    def flush(self): pass\n"
        "w._serve(sys.stdin.buffer, Sink())\n"
    )
    (tmp_path / "dies.py").write_text(dies)
    stand_in = _stand_in(tmp_path, f'exec "{python}" {tmp_path}/dies.py')
    monkeypatch.setattr(sys, "executable", stand_in)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        shared = rows(walk_parallel(tree, links=True, chunk_rows=5, processes=2))
    assert sorted(shared) == alone and len(shared) == len(set(shared))
    assert "a walking helper failed" in caplog.text


def test_a_walk_left_before_its_end_stops_its_helpers_and_says_nothing(
    tree: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(parallel_walk, "FOLDERS_PER_PROCESS", 4)
    walk = walk_parallel(tree, links=True, chunk_rows=5, processes=3)
    next(walk)
    assert len(children_running(os.getpid(), "indexer.parallel_walk")) == 2
    walk.close()
    assert children_running(os.getpid(), "indexer.parallel_walk") == []
    assert "failed" not in caplog.text


def test_a_reconcile_of_a_big_tree_walks_it_shared_and_finds_what_changed(
    tree: Path, index_db: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []

    class Helper(parallel_walk._Helper):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(parallel_walk, "_Helper", Helper)
    stats = list(scan_tree(tree))
    FileTracker(index_db, "v2").mark_indexed([(s.key, s.stamp, "h") for s in stats])
    (tree / "part" / "msg_010" / "prt_0.json").unlink()
    write(tree, "part/msg_011/prt_1.json", b"{} ")
    write(tree, "part/msg_999/prt_0.json", b"{}")

    def scan(processes: int) -> ReconcileReport:
        config = ReconcilerConfig(walk_processes=processes, parallel_walk_min_files=100)
        return Reconciler(tree, index_db.cursor, lambda *_: None, set, config).scan_now()

    alone = scan(1)  # the link is new: scanned, never indexed
    assert started == []
    shared = scan(2)  # file_index holds 363 rows: big enough
    assert len(started) == 1
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


def test_a_helper_ignores_ctrl_c_and_sigterm_sent_to_the_process_group(tree: Path) -> None:
    helper = subprocess.Popen(
        [sys.executable, "-m", "indexer.parallel_walk"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    try:
        ignored = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))

        def ignoring() -> bool:
            status = Path(f"/proc/{helper.pid}/status").read_text()
            mask = int(status.split("SigIgn:")[1].split()[0], 16)
            return mask & ignored == ignored

        assert wait_until(ignoring)
        helper.send_signal(signal.SIGINT)
        helper.send_signal(signal.SIGTERM)
        assert helper.stdin is not None and helper.stdout is not None
        parallel_walk._send((True, 50, [(str(tree / "part"), "part/")]), helper.stdin)
        helper.stdin.close()
        got: list[Row] = []
        while (walked := parallel_walk._receive(helper.stdout)) is not None:
            got.extend(rows(parallel_walk._receive_batches(walked, helper.stdout)[1]))
        assert helper.wait(timeout=10) == 0
        assert sorted(got) == sorted(
            r for r in rows(walk_columns(tree, links=True)) if r[0].startswith("part/")
        )
    finally:
        helper.kill()
        helper.wait()
