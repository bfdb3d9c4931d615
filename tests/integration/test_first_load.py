"""A first catch-up loaded in bulk (indexer.pipeline.first_load) writes what the regular way
writes, row for row: clean files in bulk, every other file decided by the regular way, on the
indexer's thread or on worker processes; a batch whose commit fails loses nothing."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
import pytest

from indexer.kinds import DATA_TABLES, FileKey, WireKey, classify, to_wire
from indexer.outcome import BatchResult
from indexer.pipeline import first_load as first_load_module
from indexer.pipeline.accumulator import AccumulatorConfig
from indexer.pipeline.first_load import LoadedBatch, load_first
from indexer.pipeline.read_pool import PoolConfig, ReadPool
from indexer.pipeline.read_worker import Answer, read_task
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.scan import scan_tree
from indexer.simulate import OpenCodeSimulator
from indexer.store.database import THREADS
from tests.faults.support import census_of, reading, scalar
from tests.helpers import children_running, wait_until, write

# Never "too recent to trust": a file that fails to parse is in error at once, either way.
PROCESSOR = ProcessorConfig(settle_s=0)
BULK_FROM = first_load_module.MIN_FILES
"""The real threshold (the tests here lower it in this process, not in a child's)."""
TRACKED = (
    "file_path, file_type, mtime, size, record_id, error_message, status, mtime_ns, "
    "content_hash, attempts, indexer_version"
)
"""file_index's columns but the times of the indexing itself."""


@pytest.fixture(autouse=True)
def any_tree_loads_in_bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trees here are small: the bulk way starts at first_load.MIN_FILES files."""
    monkeypatch.setattr(first_load_module, "MIN_FILES", 0)
    monkeypatch.setattr(first_load_module, "BATCH_FILES", 50)


@pytest.fixture
def mixed_tree(tmp_path: Path) -> Path:
    """Clean files, and every kind of file the bulk way leaves to the regular way."""
    root = tmp_path / "storage"
    report = OpenCodeSimulator(root, seed=5, faults=True).write_sessions(40)
    assert report.faults  # truncated and corrupt files among the clean ones
    write(root, "session/global/ses_empty.json", b"")
    write(root, "part/msg_x/prt_big.json", b'{"id": "prt_big", "n": 99999999999999999999}')
    write(root, "notes/readme.txt", b"not a record")  # of no indexed kind
    os.symlink(root / "session/global/ses_empty.json", root / "session/global/ses_link.json")
    return root


def index_once(
    root: Path,
    db: Path,
    *,
    first_load: bool,
    pool: PoolConfig = PoolConfig(),  # noqa: B008 (frozen)
    batch_files: int = 50,
    watch: bool = False,
    held: int = 50_000,
    walk_threads: int = 1,
) -> None:
    config = V2Config(
        accumulator=AccumulatorConfig(
            max_files=batch_files, max_files_under_backlog=batch_files, max_pending_files=held
        ),
        processor=PROCESSOR,
        reconciler=ReconcilerConfig(walk_threads=walk_threads),
        pool=pool,
        watch=watch,
        first_load=first_load,
    )
    indexer = UnifiedIndexerV2(root, db, config=config)
    indexer.start()
    try:
        assert wait_until(indexer.is_idle, 30)
    finally:
        indexer.stop()


def contents(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with reading(db) as conn:
        out = {
            "file_index": conn.execute(f"SELECT {TRACKED} FROM file_index ORDER BY 1").fetchall()
        }
        for table in DATA_TABLES:
            out[table.name] = conn.execute(f"SELECT * FROM {table.name} ORDER BY ALL").fetchall()
        return out


def files_in(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() or p.is_symlink())


def batch_triggers(db: Path) -> dict[str, int]:
    with reading(db) as conn:
        rows = conn.execute("SELECT trigger, sum(files) FROM batch_log GROUP BY 1").fetchall()
        return {str(t): int(n) for t, n in rows}


@pytest.mark.parametrize(
    "pool",
    [PoolConfig(), PoolConfig(workers=2), PoolConfig(first_load_workers=2)],
    ids=["here", "on-the-indexers-workers", "on-workers-started-for-it"],
)
def test_the_bulk_way_writes_what_the_regular_way_writes(
    mixed_tree: Path, tmp_path: Path, pool: PoolConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(first_load_module, "ON_WORKERS", 0)  # any tree goes to the workers
    # Their start waited for: every batch is read on them, none on this thread meanwhile.
    monkeypatch.setattr(ReadPool, "warm", ReadPool._warm)
    on_workers: list[int] = []
    read_wire = ReadPool.read_wire

    def counted(self: ReadPool, wire: Any, records: Any = None) -> Any:
        on_workers.append(len(wire))
        return read_wire(self, wire, records)

    monkeypatch.setattr(ReadPool, "read_wire", counted)
    regular, bulk = tmp_path / "regular.duckdb", tmp_path / "bulk.duckdb"
    index_once(mixed_tree, regular, first_load=False)
    assert on_workers == []
    index_once(mixed_tree, bulk, first_load=True, pool=pool)
    assert bool(on_workers) == (pool != PoolConfig())
    # Workers started for the first catch-up stopped with it; the indexer's with the indexer.
    assert children_running(os.getpid(), "indexer.pipeline.read_worker") == []

    loaded = contents(bulk)
    assert loaded == contents(regular)
    statuses = {row[6] for row in loaded["file_index"]}
    assert statuses >= {"indexed", "error", "skipped"}
    triggers = batch_triggers(bulk)
    files = len(loaded["file_index"])
    # Most files went in bulk, the rest the regular way; every one exactly once.
    assert files * 0.6 < triggers["catch_up"] < files
    assert sum(triggers.values()) == files
    assert "catch_up" not in batch_triggers(regular)
    assert census_of(bulk, mixed_tree) == []


@pytest.mark.parametrize(
    ("pool", "while_loading"),
    [(PoolConfig(), {str(THREADS)}), (PoolConfig(first_load_workers=2), {"1"})],
    ids=["here", "on-workers"],
)
def test_duckdb_commits_a_load_read_on_workers_on_one_thread_and_gets_its_threads_back(
    mixed_tree: Path,
    tmp_path: Path,
    pool: PoolConfig,
    while_loading: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(first_load_module, "ON_WORKERS", 0)
    config = V2Config(processor=PROCESSOR, pool=pool, watch=False)
    seen: dict[str, set[str]] = {}

    def threads(conn: Any) -> str:
        return str(conn.execute("SELECT current_setting('threads')").fetchone()[0])

    def on_batch(result: BatchResult) -> None:  # on the writer's thread, as it commits
        assert indexer.writer is not None
        seen.setdefault(result.trigger, set()).add(threads(indexer.writer.cursor()))

    indexer = UnifiedIndexerV2(
        mixed_tree, tmp_path / "index.duckdb", config=config, on_batch=on_batch
    )
    indexer.start()
    try:
        assert wait_until(indexer.is_idle, 30)
        assert indexer.writer is not None
        after = indexer.writer.run(threads, writes=False)
    finally:
        indexer.stop()
    assert seen["catch_up"] == while_loading
    assert after == str(THREADS)  # as the database was opened (store.database._connect)


def test_batches_are_read_here_until_the_workers_are_up_then_on_them(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    OpenCodeSimulator(root, seed=11).write_sessions(2)
    wire = [to_wire(k) for k in keys_of(root)]
    pool = ReadPool(root, ProcessorConfig(), PoolConfig(workers=1))
    read = first_load_module.reader(pool, root, ProcessorConfig())
    try:
        here = read(wire)  # not started: read on this thread, not waited for
        assert pool.batches == 0 and not pool.ready
        pool.warm()
        assert wait_until(lambda: pool.ready, 30)
        there = read(wire)
        assert pool.batches == 1
        assert outcomes_of(there) == outcomes_of(here)
    finally:
        pool.close()
    assert children_running(os.getpid(), "indexer.pipeline.read_worker") == []


def test_the_rest_of_a_batch_goes_to_the_workers_as_soon_as_they_are_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "storage"
    OpenCodeSimulator(root, seed=12).write_sessions(2)
    wire = [to_wire(k) for k in keys_of(root) if k.is_indexed_kind]
    pool = ReadPool(root, ProcessorConfig(), PoolConfig(workers=1))
    monkeypatch.setattr(first_load_module, "HERE_FILES", 5)
    real_read_task = first_load_module.read_task
    here: list[int] = []

    def read_task_then_start(*args: Any) -> Answer:
        answer = real_read_task(*args)
        here.append(len(answer[0]))
        pool.warm()  # up once the first 5 files are read here
        assert wait_until(lambda: pool.ready, 30)
        return answer

    monkeypatch.setattr(first_load_module, "read_task", read_task_then_start)
    try:
        answers = first_load_module.reader(pool, root, ProcessorConfig())(wire)
        assert here == [5] and pool.batches == 1 and pool.keys == len(wire) - 5 > 0
        whole = [real_read_task(os.fspath(root), wire, ProcessorConfig())]
        assert outcomes_of(answers) == outcomes_of(whole)
    finally:
        pool.close()


def outcomes_of(answers: Sequence[Answer]) -> list[Any]:
    """Every file's outcome, whichever answer holds it, with no place in a table (which depends
    on how the files were split)."""
    return [o[:-2] for outcomes, _ in answers for o in outcomes]


def test_the_workers_start_from_the_walk_once_it_has_seen_enough_files(
    mixed_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(first_load_module, "MIN_FILES", files_in(mixed_tree) // 2)
    monkeypatch.setattr(first_load_module, "ON_WORKERS", 0)
    starts: list[tuple[str, ReadPool | None]] = []
    real_start = first_load_module.LoadWorkers.start

    def start(self: first_load_module.LoadWorkers, files: int) -> ReadPool | None:
        pool = real_start(self, files)
        starts.append((threading.current_thread().name, pool))
        return pool

    monkeypatch.setattr(first_load_module.LoadWorkers, "start", start)
    db = tmp_path / "index.duckdb"
    index_once(
        mixed_tree, db, first_load=True, pool=PoolConfig(first_load_workers=1), walk_threads=2
    )
    # Started halfway through the walk, on a walk thread; the load took the same workers.
    (walk_thread, pool), (_, load_pool) = starts
    assert walk_thread.startswith("ocindex-walk-") and pool is not None and load_pool is pool
    assert pool.batches > 0 and "catch_up" in batch_triggers(db)
    assert children_running(os.getpid(), "indexer.pipeline.read_worker") == []
    assert census_of(db, mixed_tree) == []


def test_a_small_first_catch_up_takes_the_regular_way(
    mixed_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_in(mixed_tree)
    monkeypatch.setattr(first_load_module, "MIN_FILES", files + 1)
    db = tmp_path / "index.duckdb"
    index_once(mixed_tree, db, first_load=True)
    assert "catch_up" not in batch_triggers(db)
    assert sum(batch_triggers(db).values()) == files


def test_a_watched_first_catch_up_is_loaded_in_bulk_only_past_what_the_accumulator_holds(
    mixed_tree: Path, tmp_path: Path
) -> None:
    """With a live view, start() must return as the catch-up starts, unless it would wait for
    room in the accumulator anyway."""
    files = files_in(mixed_tree)
    small, big = tmp_path / "small.duckdb", tmp_path / "big.duckdb"
    index_once(mixed_tree, small, first_load=True, watch=True, held=2 * files)
    index_once(mixed_tree, big, first_load=True, watch=True, held=files // 2)
    assert "catch_up" not in batch_triggers(small)
    assert "catch_up" in batch_triggers(big)
    assert contents(small) == contents(big)


def test_a_later_start_takes_the_regular_way(mixed_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.duckdb"
    index_once(mixed_tree, db, first_load=True)
    first = batch_triggers(db)
    write(mixed_tree, "session/global/ses_new.json", orjson.dumps({"id": "ses_new"}))
    index_once(mixed_tree, db, first_load=True)
    assert batch_triggers(db)["catch_up"] == first["catch_up"]  # the index was not empty
    assert census_of(db, mixed_tree) == []


def keys_of(root: Path) -> list[FileKey]:
    return [s.key for s in scan_tree(root)]


class Reads:
    """load_first's `read`: the real reader on this thread; the fail_at-th call raises."""

    def __init__(self, root: Path, fail_at: int = 0) -> None:
        self.root, self.fail_at, self.calls = root, fail_at, 0

    def __call__(self, wire: list[WireKey]) -> list[Answer]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("a bug in the reader")
        return [read_task(os.fspath(self.root), wire, PROCESSOR)]


class Commits:
    """load_first's `commit`, done at once; the fail_at-th fails and its files go to `regular`,
    as the indexer's writer job sends them."""

    def __init__(self, regular: list[FileKey], fail_at: int = 0) -> None:
        self.regular, self.fail_at = regular, fail_at
        self.paths: list[list[str]] = []
        """The paths of each batch committed."""
        self.calls = 0

    def __call__(self, loaded: LoadedBatch, clean: list[FileKey]) -> Future[int]:
        assert [k.rel_path for k in clean] == loaded.paths
        self.calls += 1
        done: Future[int] = Future()
        if self.calls == self.fail_at:
            self.regular.extend(clean)
            done.set_result(0)
        else:
            self.paths.append(loaded.paths)
            done.set_result(len(loaded))
        return done


def test_a_batch_whose_commit_fails_goes_the_regular_way_whole(mixed_tree: Path) -> None:
    keys = [k for k in keys_of(mixed_tree) if classify(k.rel_path) is not None]
    regular: list[FileKey] = []
    commits = Commits(regular, fail_at=2)

    files = load_first([keys], Reads(mixed_tree), commits, regular.extend, lambda: False, 100)

    assert commits.calls >= 3 and files == sum(len(c) for c in commits.paths)
    loaded = {p for c in commits.paths for p in c}
    assert len(loaded) == files  # no file twice
    assert loaded.isdisjoint(k.rel_path for k in regular)
    assert loaded | {k.rel_path for k in regular} == {k.rel_path for k in keys}


def test_a_read_that_raises_sends_its_batch_the_regular_way(mixed_tree: Path) -> None:
    keys = keys_of(mixed_tree)
    regular: list[FileKey] = []
    reads = Reads(mixed_tree, fail_at=2)

    files = load_first([keys], reads, Commits(regular), regular.extend, lambda: False, 20)
    assert reads.calls == -(-len(keys) // 20)
    assert files + len(regular) == len(keys)
    assert len(regular) >= 20  # the whole second batch, and the files that did not read cleanly


def test_stopping_hands_the_files_left_to_the_regular_way_unread(mixed_tree: Path) -> None:
    keys = keys_of(mixed_tree)
    regular: list[FileKey] = []
    reads, commits = Reads(mixed_tree), Commits(regular)

    # Stopped once the first batch is committed: the one read meanwhile is still committed.
    files = load_first([keys], reads, commits, regular.extend, lambda: bool(commits.paths), 10)
    assert reads.calls == 2 and len(commits.paths) == 2 and 0 < files <= 20
    assert len(regular) == len(keys) - files


@pytest.mark.parametrize(
    ("expected", "most", "least"),
    [(20_106, 5000, 1000), (1_000_000, 5000, 1000), (12_000, 5000, 1000), (1500, 5000, 1000),
     (7, 5000, 1000), (500, 20, 1000), (10_000, 100, 1000)],
)  # fmt: skip
def test_batches_shrink_toward_the_end_and_stay_whole(expected: int, most: int, least: int) -> None:
    sizes = first_load_module.batch_sizes(expected, most, least)
    planned: list[int] = []
    while sum(planned) < expected:
        planned.append(next(sizes))
    assert sum(planned) == expected and max(planned) <= most
    # Never more than half of what was left, until it is under twice the least; none below it.
    left = expected
    for size in planned:
        assert size <= max(min(least, most), -(-left // 2)) or left < 2 * min(least, most)
        assert size >= min(least, most, left)
        left -= size
    assert planned[-1] < 2 * min(least, most) or len(planned) == 1  # the last commit is short
    assert [next(sizes) for _ in range(3)] == [most] * 3  # more keys than expected: `most` each


def test_the_batches_read_follow_the_expected_count(
    mixed_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(first_load_module, "LAST_BATCH_FILES", 10)
    keys = keys_of(mixed_tree)
    read_sizes: list[int] = []
    reads = Reads(mixed_tree)

    def read(wire: list[WireKey]) -> list[Answer]:
        read_sizes.append(len(wire))
        return reads(wire)

    regular: list[FileKey] = []
    files = load_first(
        [keys],
        read,
        Commits(regular),
        regular.extend,
        lambda: False,
        40,
        len(keys),
    )
    assert files + len(regular) == len(keys)
    skipped = sum(1 for k in keys if classify(k.rel_path) is None or k.kind == "skipped")
    assert sum(read_sizes) + skipped == len(keys)
    # Whole batches first, then each at most half of what was left, the last under twice 10.
    assert len(keys) >= 160 and read_sizes[0] == 40 and read_sizes[-1] < 20
    assert sum(1 for size in read_sizes if size < 40) >= 2


def test_a_commit_that_never_ran_counts_nothing(mixed_tree: Path) -> None:
    def commit(loaded: LoadedBatch, clean: list[FileKey]) -> Future[int]:
        done: Future[int] = Future()
        done.set_exception(RuntimeError("the index writer is not running"))
        return done

    assert (
        load_first([keys_of(mixed_tree)], Reads(mixed_tree), commit, list, lambda: False, 20) == 0
    )


def test_a_record_a_committed_batch_holds_sends_the_next_batch_the_regular_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two copies of one record in two batches: the second's plain insert cannot land, so its
    batch goes the regular way, which replaces the record's rows as it always does."""
    monkeypatch.setattr(first_load_module, "BATCH_FILES", 1)
    root = tmp_path / "storage"
    for i in range(6):
        write(root, f"session/global/ses_{i}.json", orjson.dumps({"id": f"ses_{i}"}))
    session = orjson.dumps({"id": "ses_twice", "title": "twice"})
    write(root, "session/a/ses_twice.json", session)
    write(root, "session/b/ses_twice.json", session)
    regular, bulk = tmp_path / "regular.duckdb", tmp_path / "bulk.duckdb"
    index_once(root, regular, first_load=False, batch_files=1)
    index_once(root, bulk, first_load=True, batch_files=1)

    assert contents(bulk) == contents(regular)
    assert batch_triggers(bulk)["catch_up"] == 7  # all but the second copy
    with reading(bulk) as conn:
        assert scalar(conn, "SELECT count(*) FROM sessions") == 7
        assert scalar(conn, "SELECT count(*) FROM file_index WHERE status = 'indexed'") == 8


def test_index_on_a_terminal_shows_a_first_catch_up_loading_in_bulk(tmp_path: Path) -> None:
    """`ocindex index` loads a big first catch-up inside the indexer's start: its progress line
    runs meanwhile, and ends on every file done."""
    root = tmp_path / "storage"
    files = BULK_FROM + 500
    for i in range(files):
        doc = b'{"id": "prt_%05d", "messageID": "msg_%03d", "type": "text", "text": "t"}'
        write(root, f"part/msg_{i // 100:03d}/prt_{i:05d}.json", doc % (i, i // 100))
    master, slave = pty.openpty()
    argv = ["index", "--indexer", "v2", "--storage", root, "--db", tmp_path / "index.duckdb"]
    child = subprocess.Popen(
        [sys.executable, "-m", "indexer", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "OCINDEX_READ_WORKERS": "0"},
    )
    os.close(slave)
    screen = b""
    try:
        out, _ = child.communicate(timeout=120)
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end closed
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    assert child.returncode == 0, screen
    assert f"indexed {files} of {files} files".encode() in out
    assert f"indexing: {files:,} files done".encode() in screen, screen[-400:]
    assert batch_triggers(tmp_path / "index.duckdb") == {"catch_up": files}
