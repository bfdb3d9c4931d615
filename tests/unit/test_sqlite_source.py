"""OpenCode's SQLite store as a source: discovery, keys, rows rebuilt and parsed like the JSON
files, read-only and polite access, unknown schemas, watermarks, the fast path, the overlap rule
between a JSON file and a row holding the same record, and the SQLite simulator."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from indexer.kinds import TABLES, FileKey, FileKind
from indexer.outcome import FileRead, FileStatus, ParsedFile
from indexer.pipeline import apply as apply_module
from indexer.pipeline.accumulator import Batch, PendingEntry, SealReason, Trigger
from indexer.pipeline.processor import BatchProcessor
from indexer.pipeline.reader import ProcessorConfig
from indexer.records import parse
from indexer.simulate import SqliteSimulator, create_opencode_db
from indexer.sources.sqlite import (
    SourceState,
    SqliteSource,
    SqliteSourceConfig,
    discover_databases,
    make_sources,
    source_prefix,
)
from tests.helpers import before_each_read, key_of, wait_until, write
from tests.support.writes import WriteCount

SES = "ses_4891e7a39ffevhRzlPRxXhew1j"
MSG = "msg_b76ef1510001AQ92WeEuAj0LVf"
PRT = "prt_b76ef1510002AQ92WeEuAj0LVg"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An empty OpenCode 1.2 store beside tmp_path/storage, with one project and session."""
    path = tmp_path / "opencode.db"
    conn = create_opencode_db(path)
    conn.execute(
        "INSERT INTO project (id, worktree, time_created, time_updated, sandboxes) "
        "VALUES ('global', '/', 1000, 1000, '[]')"
    )
    conn.execute(
        "INSERT INTO session (id, project_id, slug, directory, title, version, time_created, "
        "time_updated) VALUES (?, 'global', 'calm-otter', '/w', 'first', '1.2.0', 1000, 1000)",
        [SES],
    )
    conn.close()
    return path


def rw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def put_message(conn: sqlite3.Connection, updated: int, data: object, mid: str = MSG) -> None:
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    conn.execute(
        "INSERT INTO message (id, session_id, time_created, time_updated, data) "
        "VALUES (?, ?, 1000, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "time_updated = excluded.time_updated, data = excluded.data",
        [mid, SES, updated, text],
    )


def put_part(conn: sqlite3.Connection, updated: int, data: object, pid: str = PRT) -> None:
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    conn.execute(  # its message first (a foreign key), left alone if it exists
        'INSERT OR IGNORE INTO message VALUES (?, ?, 1, 1, \'{"role": "user"}\')', [MSG, SES]
    )
    conn.execute(
        "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) "
        "VALUES (?, ?, ?, 1000, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "time_updated = excluded.time_updated, data = excluded.data",
        [pid, MSG, SES, updated, text],
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- discovery and keys --------------------------------------------------------------------


def test_discovery_order_flag_then_env_then_the_data_folder(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    assert discover_databases(root, None, {}) == []
    for name in ("opencode-dev.db", "opencode.db", "opencode-local.db", "other.db"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "opencode.db-wal").write_bytes(b"")
    assert [p.name for p in discover_databases(root, None, {})] == [
        "opencode.db",
        "opencode-dev.db",
        "opencode-local.db",
    ]
    assert discover_databases(root, None, {"OPENCODE_DB": "/x/y.db"}) == [Path("/x/y.db")]
    assert discover_databases(root, None, {"OPENCODE_DB": "custom.db"}) == [tmp_path / "custom.db"]
    flag = tmp_path / "flag.db"
    assert discover_databases(root, flag, {"OPENCODE_DB": "/x/y.db"}) == [flag]


def test_each_database_gets_its_own_namespaced_prefix(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "opencode.db", tmp_path / "b" / "opencode.db"
    sources = make_sources([a, b, a, tmp_path / "opencode-dev.db"], tmp_path / "storage")
    prefixes = [s.prefix for s in sources]
    assert len(prefixes) == 3 and len(set(prefixes)) == 3  # the duplicate path is dropped
    assert prefixes[0] == "sqlite:opencode.db:" and prefixes[2] == "sqlite:opencode-dev.db:"
    assert all(p.startswith("sqlite:") and p.endswith(":") for p in prefixes)
    assert not any(p.startswith(q) for p in prefixes for q in prefixes if p != q)
    assert source_prefix(Path("/x/it's odd.db")) == "sqlite:it_s_odd.db:"
    src = sources[0]
    assert src.key_for("sqlite:opencode.db:part/prt_1") == FileKey(
        "sqlite:opencode.db:part/prt_1", FileKind.PART, "prt_1"
    )
    assert src.key_for("sqlite:opencode.db:todo/ses_1").kind is FileKind.TODO  # type: ignore[union-attr]
    for other in ("part/prt_1.json", "sqlite:opencode.db:nope/x", "sqlite:opencode.db:part/"):
        assert src.key_for(other) is None


# --- rows read like files ------------------------------------------------------------------


def test_every_row_rebuilt_parses_to_the_rows_of_the_record_opencode_holds(
    tmp_path: Path,
) -> None:
    root = tmp_path / "storage"
    with SqliteSimulator(root, seed=4, delete_share=0.5) as sim:
        sim.write_sessions(5)
        expected = sim.expected_rows()
    assert sim.deleted_sessions, "the seed should delete a session"
    src = SqliteSource(sim.db_path, root)
    stamps = src.stamps()
    assert stamps is not None
    paths = stamps.column("path").to_pylist()
    assert {p.removeprefix(src.prefix) for p in paths} == set(expected)
    reads = {r.key.rel_path: r for r in src.read([src.key_for(p) for p in paths])}  # type: ignore[misc]
    by_stamp = dict(
        zip(
            paths,
            zip(
                stamps.column("mtime_ns").to_pylist(),
                stamps.column("size").to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )
    todo_id = TABLES[FileKind.TODO].column_names.index("todo_id")
    rollup = TABLES[FileKind.SESSION].column_names.index("rollup_cost")
    for path, read in reads.items():
        assert read.status is FileStatus.INDEXED, (path, read.message)
        assert read.stamp is not None and (read.stamp.mtime_ns, read.stamp.size) == by_stamp[path]
        want = parse(read.key, expected[path.removeprefix(src.prefix)])
        assert isinstance(want, ParsedFile) and read.parsed is not None
        got_rows, want_rows = read.parsed.rows, want.rows
        if read.key.kind is FileKind.TODO:  # OpenCode's todo table drops the todo's own id
            want_rows = tuple((*r[:todo_id], None, *r[todo_id + 1 :]) for r in want_rows)
        if read.key.kind is FileKind.SESSION:  # the usage roll-up exists in the store only
            got_rows = tuple(r[:rollup] + (None,) * (len(r) - rollup) for r in got_rows)
            assert all(r[rollup] is not None for r in read.parsed.rows), path
        assert got_rows == want_rows, path


def test_a_missing_row_is_deleted_and_bad_data_is_an_error_with_its_reason(db: Path) -> None:
    conn = rw(db)
    put_message(conn, 2000, "{not json", mid=MSG)
    put_message(conn, 2000, [1, 2], mid="msg_2")
    put_message(conn, 2000, {"role": "user", "time": {"created": 1}}, mid="msg_3")
    conn.close()
    src = SqliteSource(db)
    keys = [src.key_for(f"{src.prefix}message/{m}") for m in (MSG, "msg_2", "msg_3", "msg_gone")]
    reads = src.read([k for k in keys if k is not None])
    status = {r.key.record_id: (r.status, (r.message or "").split(":")[0]) for r in reads}
    assert status == {
        MSG: (FileStatus.ERROR, "invalid_json"),
        "msg_2": (FileStatus.ERROR, "not_object"),
        "msg_3": (FileStatus.INDEXED, ""),
        "msg_gone": (FileStatus.DELETED, ""),
    }
    assert reads[2].parsed is not None and reads[2].parsed.rows[0][1] == SES  # sessionID added
    assert reads[0].stamp is not None and reads[0].stamp.mtime_ns == 2000 * 1_000_000


def test_a_row_over_the_size_limit_is_an_error_without_loading_it(db: Path) -> None:
    conn = rw(db)
    put_part(conn, 5, {"type": "text", "text": "x" * 5000})
    conn.close()
    src = SqliteSource(db, config=SqliteSourceConfig(max_record_bytes=1000))
    [read] = src.read([FileKey(f"{src.prefix}part/{PRT}", FileKind.PART, PRT)])
    assert read.status is FileStatus.ERROR and (read.message or "").startswith("too_large")


# --- read-only, polite, unavailable ----------------------------------------------------------


def test_a_missing_database_is_never_created_and_never_reports_rows_gone(tmp_path: Path) -> None:
    path = tmp_path / "opencode.db"
    src = SqliteSource(path)
    assert src.stamps() is None
    assert src.describe()["state"] == "missing"
    [read] = src.read([FileKey(f"{src.prefix}part/p", FileKind.PART, "p")])
    assert read.status is FileStatus.PENDING
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_database_path_that_is_a_fifo_is_unreadable_at_once_never_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "opencode.db"
    os.mkfifo(path)  # SQLite opening it would wait for a writer, forever
    src = SqliteSource(path)
    assert src.stamps() is None
    assert src.describe()["state"] == "unreadable"
    assert "not a regular file" in str(src.describe()["message"])
    [read] = src.read([FileKey(f"{src.prefix}part/p", FileKind.PART, "p")])
    assert read.status is not FileStatus.DELETED


def test_reading_never_writes_the_database_file(db: Path) -> None:
    conn = rw(db)
    put_part(conn, 2000, {"type": "text", "text": "hello"})
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = sha(db)
    src = SqliteSource(db)
    for _ in range(3):
        assert src.stamps() is not None
        src.read([FileKey(f"{src.prefix}part/{PRT}", FileKind.PART, PRT)])
        src.probe()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        src._connect().execute("CREATE TABLE nope (x)")
    assert sha(db) == before


def test_a_locked_database_is_busy_and_retried_not_gone(tmp_path: Path) -> None:
    path = tmp_path / "opencode.db"
    create_opencode_db(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=DELETE")  # a rollback journal: a writer blocks readers
    src = SqliteSource(path, config=SqliteSourceConfig(busy_timeout_ms=20))
    assert src.stamps() is not None
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO project VALUES ('p', '/', 0, 0, 0, 0, 1, 1, 0, '[]', 0, 0)")
    try:
        src._schema = None  # as after a schema change: the check must read the database
        assert src.stamps() is None
        assert src.describe()["state"] == "busy"
        [read] = src.read([FileKey(f"{src.prefix}project/p", FileKind.PROJECT, "p")])
        assert read.status is FileStatus.PENDING and read.retry_in_s is not None
        assert "locked" in (read.message or "")
    finally:
        writer.execute("COMMIT")
    assert src.stamps() is not None and src.state is SourceState.OK


def test_a_store_of_no_known_generation_is_named_once_and_the_database_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "opencode.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE session_message (id text, session_id text, type text, data text)")
    conn.execute("CREATE TABLE account (id text)")
    conn.commit()
    conn.close()
    src = SqliteSource(path)
    with caplog.at_level(logging.INFO, logger="indexer.sources.sqlite"):
        for _ in range(3):
            assert src.stamps() is None
            assert src.read([FileKey(f"{src.prefix}part/p", FileKind.PART, "p")])[0].status is (
                FileStatus.PENDING
            )
    described = src.describe()
    assert described["state"] == "unknown_schema"
    message = str(described["message"])
    assert "neither session_v2 nor session + message" in message and "account" in message
    assert "skipped" in message and "JSON files are still indexed" in message
    lines = [r for r in caplog.records if "unknown schema" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


def test_a_table_without_its_data_column_is_an_unknown_schema(tmp_path: Path) -> None:
    path = tmp_path / "opencode.db"
    conn = create_opencode_db(path)
    conn.execute("ALTER TABLE message RENAME COLUMN data TO payload")
    conn.close()
    src = SqliteSource(path)
    assert src.stamps() is None
    assert "message without column data" in str(src.describe()["message"])


def test_a_database_without_tables_yet_becomes_usable_once_created(tmp_path: Path) -> None:
    path = tmp_path / "opencode.db"
    sqlite3.connect(path).close()  # OpenCode has created the file, not yet its tables
    src = SqliteSource(path)
    assert src.stamps() is None and src.state is SourceState.INITIALIZING
    create_opencode_db(path).close()  # the migration ran: schema_version changed
    stamps = src.stamps()
    assert stamps is not None and stamps.num_rows == 0 and src.state is SourceState.OK


# --- watermarks and the fast path ------------------------------------------------------------


def test_watermarks_rise_in_the_batch_transaction_and_are_read_at_start(
    db: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    conn = rw(db)
    put_message(conn, 5000, {"role": "user"})
    put_part(conn, 7000, {"type": "text", "text": "a"})
    conn.close()
    src = SqliteSource(db)
    reads = src.read(
        [
            FileKey(f"{src.prefix}message/{MSG}", FileKind.MESSAGE, MSG),
            FileKey(f"{src.prefix}part/{PRT}", FileKind.PART, PRT),
            FileKey(f"{src.prefix}part/gone", FileKind.PART, "gone"),
        ]
    )
    src.write_progress(index_db, reads)
    older = [FileRead(r.key, r.status, r.stamp.__class__(1, 1)) for r in reads if r.stamp]
    src.write_progress(index_db, older)  # a lower time_updated never lowers a watermark
    rows = index_db.execute("SELECT * FROM source_watermarks ORDER BY table_name").fetchall()
    assert rows == [(src.prefix, "message", 5000), (src.prefix, "part", 7000)]
    again = SqliteSource(db, index=index_db.cursor)
    again._load_committed()
    assert again.describe()["watermarks"] == {"message": 5000, "part": 7000}


def test_the_fast_path_submits_each_changed_row_once_per_version(db: Path) -> None:
    src = SqliteSource(db)
    submitted: list[list[str]] = []
    src._submit = lambda keys, trigger: submitted.append([k.rel_path for k in keys])
    assert src.stamps() is not None  # what the startup reconcile saw...
    primed = src.poll_once()  # ...sets the cursors; the overlap re-asks its newest rows once
    assert {k.record_id for k in primed} <= {"global", SES}
    assert src.poll_once() == []
    conn = rw(db)
    put_message(conn, 2000, {"role": "assistant"})
    put_part(conn, 2000, {"type": "text", "text": "he"})
    session = f"{src.prefix}session/{SES}"  # asked again with each change of its rows
    first = {k.rel_path for k in src.poll_once()}
    assert first == {f"{src.prefix}message/{MSG}", f"{src.prefix}part/{PRT}", session}
    assert src.poll_once() == []  # within the overlap window, but already submitted
    put_part(conn, 2000, {"type": "text", "text": "hello"})  # same millisecond, new content
    assert [k.rel_path for k in src.poll_once()] == [f"{src.prefix}part/{PRT}", session]
    put_part(conn, 2600, {"type": "text", "text": "hello"})  # updated in place, later
    assert [k.rel_path for k in src.poll_once()] == [f"{src.prefix}part/{PRT}", session]
    conn.execute(
        "INSERT INTO todo VALUES (?, 'a', 'pending', 'high', 0, 2700, 2700), "
        "(?, 'b', 'pending', 'low', 1, 2700, 2700)",
        [SES, SES],
    )
    conn.execute("UPDATE session SET title = 'renamed', time_updated = 2800 WHERE id = ?", [SES])
    conn.close()
    assert {k.rel_path for k in src.poll_once()} == {
        f"{src.prefix}todo/{SES}",
        f"{src.prefix}session/{SES}",
    }
    assert len(submitted) == 4 + bool(primed) and src.describe()["cursor"]["part"] == 2600  # type: ignore[index]


def test_the_fast_path_scans_only_the_newest_rows_and_follows_a_shrunk_table(db: Path) -> None:
    src = SqliteSource(db, config=SqliteSourceConfig(tail_rows=3))
    conn = rw(db)
    for i in range(10):
        put_part(conn, 2000 + i, {"type": "text", "text": "x"}, pid=f"prt_{i:02d}")
    src.poll_once()  # primes: the 3 newest rows are the tail
    conn.execute("UPDATE part SET time_updated = 9000 WHERE id = 'prt_00'")  # old, in place
    assert src.poll_once() == []  # outside the tail: left to the reconciler
    conn.execute("DELETE FROM part WHERE id >= 'prt_04'")  # the newest rows go...
    put_part(conn, 9100, {"type": "text", "text": "y"}, pid="prt_new")  # ...and rowids are reused
    conn.close()
    assert "prt_new" in {k.record_id for k in src.poll_once()}


def test_a_write_to_the_wal_wakes_the_poller(db: Path) -> None:
    src = SqliteSource(db, config=SqliteSourceConfig(poll_interval_s=60.0))
    got: list[str] = []
    src.start(lambda keys, trigger: got.extend(k.rel_path for k in keys))
    try:
        assert wait_until(lambda: src.polls >= 1, 5)
        conn = rw(db)
        put_part(conn, 9000, {"type": "text", "text": "hi"})
        conn.close()
        assert wait_until(lambda: f"{src.prefix}part/{PRT}" in got, 5)
        assert src.describe()["events"] >= 1  # type: ignore[operator]
    finally:
        src.stop()
    assert not src.describe()["watching"]


# --- the overlap rule ----------------------------------------------------------------------


def batch_of(keys: list[FileKey]) -> Batch:
    now = time.monotonic()
    entries = tuple(PendingEntry(k, Trigger.RECONCILER, now, time.time()) for k in keys)
    return Batch(1, SealReason.WINDOW, entries, now)


def json_message(root: Path, text_marker: str, mtime_ms: int) -> FileKey:
    rel = f"message/{SES}/{MSG}.json"
    doc = {"id": MSG, "sessionID": SES, "role": "assistant", "agent": text_marker}
    path = write(root, rel, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    os.utime(path, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))
    return key_of(rel)


def agent_of(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return conn.execute("SELECT id, agent FROM messages").fetchall()


@pytest.fixture
def overlap(
    db: Path, tmp_path: Path, index_db: duckdb.DuckDBPyConnection
) -> tuple[BatchProcessor, SqliteSource, Path]:
    root = tmp_path / "storage"
    root.mkdir()
    src = SqliteSource(db, root)
    return BatchProcessor(index_db, root, sources=[src]), src, root


def row_key(src: SqliteSource) -> FileKey:
    key = src.key_for(f"{src.prefix}message/{MSG}")
    assert key is not None
    return key


HISTORY = "history: sqlite:opencode.db holds this record"


@pytest.mark.parametrize("newer", ["json", "sqlite"])
@pytest.mark.parametrize("same_batch", [False, True])
def test_a_record_in_a_file_and_in_a_store_holding_sessions_keeps_the_stores_row(
    overlap: tuple[BatchProcessor, SqliteSource, Path],
    db: Path,
    index_db: duckdb.DuckDBPyConnection,
    newer: str,
    same_batch: bool,
) -> None:
    processor, src, root = overlap
    json_ms, row_ms = (5_000, 3_000) if newer == "json" else (3_000, 5_000)
    file_key = json_message(root, "from-json", json_ms)
    conn = rw(db)
    put_message(conn, row_ms, {"role": "assistant", "agent": "from-sqlite"})
    conn.close()
    if same_batch:
        processor.process(batch_of([file_key, row_key(src)]))
    else:  # the file first, then the row: and the other way round
        first, second = (row_key(src), file_key) if newer == "json" else (file_key, row_key(src))
        processor.process(batch_of([first]))
        processor.process(batch_of([second]))
        processor.process(batch_of([first]))  # read again changes nothing
    assert agent_of(index_db) == [(MSG, "from-sqlite")]  # a fresher JSON file never wins
    statuses = index_db.execute(
        "SELECT file_path, status, error_message FROM file_index ORDER BY file_path"
    ).fetchall()
    assert statuses == [
        (file_key.rel_path, "skipped", HISTORY),
        (row_key(src).rel_path, "indexed", None),
    ]


def test_a_record_deleted_in_the_store_stays_deleted_although_its_json_file_remains(
    overlap: tuple[BatchProcessor, SqliteSource, Path],
    db: Path,
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    processor, src, root = overlap
    file_key = json_message(root, "from-json", 3_000)
    conn = rw(db)
    put_message(conn, 5_000, {"role": "assistant", "agent": "from-sqlite"})
    processor.process(batch_of([file_key]))
    processor.process(batch_of([row_key(src)]))
    assert agent_of(index_db) == [(MSG, "from-sqlite")]
    conn.execute("DELETE FROM message WHERE id = ?", [MSG])  # OpenCode removed it
    conn.close()
    processor.process(batch_of([row_key(src)]))
    processor.process(batch_of([file_key]))  # as a reconcile would: the file is still there
    assert agent_of(index_db) == []
    status = dict(index_db.execute("SELECT file_path, status FROM file_index").fetchall())
    assert status == {file_key.rel_path: "skipped", row_key(src).rel_path: "deleted"}


def test_json_files_of_kinds_the_store_holds_are_only_stated_never_opened(
    overlap: tuple[BatchProcessor, SqliteSource, Path],
    index_db: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor, _, root = overlap
    history = [json_message(root, "from-json", 3_000).rel_path, "part/msg_x/prt_torn.json"]
    write(root, history[1], b'{"id": "prt_to')  # torn: it would be pending if read
    diff = "session_diff/ses_1.json"  # not a kind the store holds: read as ever
    write(root, diff, b"[]")
    opened: list[str] = []
    before_each_read(monkeypatch, opened.append)
    processor.process(batch_of([key_of(p) for p in [*history, diff, "part/msg_x/prt_gone.json"]]))
    assert [os.path.relpath(p, root) for p in opened] == [diff]
    rows = index_db.execute(
        "SELECT file_path, status, error_message, mtime_ns FROM file_index ORDER BY file_path"
    ).fetchall()
    assert rows == [
        (history[0], "skipped", HISTORY, 3_000_000_000),
        (history[1], "skipped", HISTORY, (root / history[1]).stat().st_mtime_ns),
        (diff, "indexed", None, (root / diff).stat().st_mtime_ns),
    ]  # and the file that does not exist leaves no trace


def test_json_rows_indexed_before_the_store_held_sessions_are_read_again_as_history(
    overlap: tuple[BatchProcessor, SqliteSource, Path],
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    _, src, root = overlap
    file_key = json_message(root, "from-json", 3_000)
    # An index built while no store existed: plain JSON processing.
    BatchProcessor(index_db, root).process(batch_of([file_key]))
    assert agent_of(index_db) == [(MSG, "from-json")]
    processor = BatchProcessor(index_db, root, sources=[src])
    processor.process(batch_of([row_key(src)]))  # the store holds sessions but not this message
    status = dict(index_db.execute("SELECT file_path, status FROM file_index").fetchall())
    assert status[file_key.rel_path] == "pending"  # marked once, in that batch
    processor.process(batch_of([file_key]))  # the reconciler's retry
    assert agent_of(index_db) == []  # its old rows went: the store never held the record
    assert index_db.execute("SELECT value FROM meta WHERE key = 'history_kinds'").fetchone()


def test_when_the_older_copy_goes_the_newer_rows_stay(
    overlap: tuple[BatchProcessor, SqliteSource, Path],
    db: Path,
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    processor, src, root = overlap
    file_key = json_message(root, "from-json", 3_000)
    conn = rw(db)
    put_message(conn, 5_000, {"role": "assistant", "agent": "from-sqlite"})
    conn.close()
    processor.process(batch_of([row_key(src)]))
    processor.process(batch_of([file_key]))
    (root / file_key.rel_path).write_bytes(b"{ torn")  # broken: its rows would be deleted...
    os.utime(root / file_key.rel_path, ns=(3_000_000_000, 3_000_000_000))
    processor.process(batch_of([file_key]))
    assert agent_of(index_db) == [(MSG, "from-sqlite")]  # ...but they are the row's
    (root / file_key.rel_path).unlink()
    processor.process(batch_of([file_key]))
    assert agent_of(index_db) == [(MSG, "from-sqlite")]


def test_a_catch_up_into_an_empty_index_finds_an_earlier_batchs_twin_in_the_trackers_filter(
    tmp_path: Path, index_db: duckdb.DuckDBPyConnection
) -> None:
    # A store that holds no sessions yet (no history) and a session file moved between project
    # folders: the newer copy lands in one batch, the older in the next.
    create_opencode_db(tmp_path / "opencode.db").close()
    root = tmp_path / "storage"
    processor = BatchProcessor(
        index_db, root, sources=[SqliteSource(tmp_path / "opencode.db", root)]
    )
    for folder, title, seconds in (("p1", "newer", 5), ("p2", "older", 3)):
        doc = {"id": "ses_m", "projectID": folder, "title": title, "time": {"created": 1}}
        path = write(root, f"session/{folder}/ses_m.json", orjson.dumps(doc))
        os.utime(path, ns=(seconds * 10**9, seconds * 10**9))
    processor.process(batch_of([key_of("session/p1/ses_m.json")]))
    processor.process(batch_of([key_of("session/p2/ses_m.json")]))
    rows = index_db.execute("SELECT id, project_id, title FROM sessions").fetchall()
    assert rows == [("ses_m", "p1", "newer")]
    statuses = index_db.execute("SELECT status FROM file_index").fetchall()
    assert statuses == [("indexed",), ("indexed",)]  # the older one tracked, its rows left alone
    # Found by the filter of records: not by an insert that failed (which turns filters off).
    assert processor.tracker.distrust_filter()


def test_without_sources_the_overlap_query_never_runs(
    index_db: duckdb.DuckDBPyConnection, storage_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(apply_module, "resolve_twins", lambda *a: calls.append(1))
    write(storage_root, f"message/{SES}/{MSG}.json", orjson.dumps({"id": MSG, "role": "user"}))
    processor = BatchProcessor(index_db, storage_root, config=ProcessorConfig(settle_s=0))
    assert processor.process(batch_of([key_of(f"message/{SES}/{MSG}.json")])).indexed == 1
    assert calls == []


# --- the simulator -----------------------------------------------------------------------


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("project", "session", "message", "part", "todo")
        }
    finally:
        conn.close()


def test_the_sqlite_simulator_is_deterministic_wal_and_writes_diffs_as_json(
    tmp_path: Path,
) -> None:
    dumps, diffs = [], []
    for run in ("a", "b"):
        root = tmp_path / run / "storage"
        with SqliteSimulator(root, seed=9, checkpoint_every=50) as sim:
            report = sim.write_sessions(4)
            assert sim.checkpoints >= report.writes // 50
            mode = sqlite3.connect(sim.db_path).execute("PRAGMA journal_mode").fetchone()
            assert mode == ("wal",)
        dumps.append(dump(tmp_path / run / "opencode.db"))
        diffs.append({p.name: p.read_bytes() for p in (root / "session_diff").iterdir()})
        assert {p.name for p in root.iterdir()} == {"session_diff"}  # nothing else as JSON
    assert dumps[0] == dumps[1] and diffs[0] == diffs[1]
    assert all(dumps[0][t] for t in ("project", "session", "message", "part", "todo"))
    times = [row[4] for row in dumps[0]["part"]]  # time_updated moves with the writes
    assert len(set(times)) > len(times) // 2


def test_a_deleted_session_takes_its_rows_with_it(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    with SqliteSimulator(root, seed=2, delete_share=0.0) as sim:
        sim.write_sessions(3)
        sid = next(k.split("/")[1] for k in sim.expected_rows() if k.startswith("session/"))
        gone = sim.delete_session(sid)
        left = sim.expected_rows()
    conn = sqlite3.connect(sim.db_path)
    for table, column in (
        ("message", "session_id"),
        ("part", "session_id"),
        ("todo", "session_id"),
    ):
        marks = ", ".join("?" * len(gone))
        n = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} IN ({marks})", gone)
        assert n.fetchone() == (0,)
    assert not any(sid in key for key in left)
    assert not (root / "session_diff" / f"{sid}.json").exists()


def test_the_live_writer_can_run_while_a_source_reads(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    sim = SqliteSimulator(root, seed=1)
    src = SqliteSource(sim.db_path, root)
    stop = threading.Event()
    errors: list[BaseException] = []
    written = WriteCount(300)

    def reader() -> None:
        while not stop.is_set():
            try:
                assert src.stamps() is not None
            except BaseException as exc:
                errors.append(exc)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        report = sim.run(0, 120.0, stop=written.enough, on_write=written)
    finally:
        stop.set()
        t.join()
        sim.close()
    assert report.writes > 100 and not errors
