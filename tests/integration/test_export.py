"""`ocindex export --parquet`: a real index of simulated sessions over two days, exported, read
back by DuckDB, changed in place and deleted from, exported again; an export that fails or is
killed mid-write; the same export through a live endpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import duckdb
import pyarrow as pa
import pytest

import indexer.export as export
from indexer.cli import main
from indexer.export import LOCK_NAME, STATE_NAME, ExportError, export_parquet
from indexer.live.address import socket_path
from indexer.live.server import LiveServer
from indexer.simulate import OpenCodeSimulator
from tests.faults.support import REPO
from tests.support.live_host import ConnectionHost

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

DAY_MS = 86_400_000
DAY_1 = 1_767_225_600_000  # 2026-01-01T00:00Z
TABLES = ("projects", "sessions", "messages", "parts", "todos", "session_diffs")
TOKENS = "sum(tokens_input), sum(tokens_output), sum(tokens_cache_read)"
FIGURES = {
    "messages": f"count(*), round(sum(cost), 9), {TOKENS}",
    "parts": f"count(*), round(sum(cost), 9), {TOKENS}, sum(text_chars)",
    "sessions": "count(*), round(sum(rollup_cost), 9), count(DISTINCT project_id)",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of sessions on 2026-01-01 and 2026-01-03, built once and copied per test."""
    base = tmp_path_factory.mktemp("export-index")
    root = base / "storage"
    OpenCodeSimulator(root, seed=1, clock_start_ms=DAY_1).write_sessions(3)
    OpenCodeSimulator(root, seed=2, clock_start_ms=DAY_1 + 2 * DAY_MS).write_sessions(3)
    db = base / "index.duckdb"
    argv = ["index", "--storage", str(root), "--db", str(db), "--indexer", "v2"]
    assert main(argv) == 0
    return db


@pytest.fixture
def db(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "index.duckdb"
    copy.write_bytes(built.read_bytes())
    return copy


def figures(conn: duckdb.DuckDBPyConnection, source: str) -> dict[str, object]:
    """Per table the row count, and sums of cost and tokens where the table has them."""
    return {
        table: conn.execute(
            f"SELECT {FIGURES.get(table, 'count(*)')} FROM {source.format(table)}"
        ).fetchall()[0]
        for table in TABLES
    }


def index_figures(db: Path) -> dict[str, object]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return figures(conn, "{}")


def export_figures(out: Path) -> dict[str, object]:
    with duckdb.connect() as conn:
        return figures(conn, f"read_parquet('{out}/{{}}/**/*.parquet', hive_partitioning=true)")


def mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.parquet")}


def change(db: Path, *statements: str) -> None:
    with duckdb.connect(str(db)) as conn:
        for sql in statements:
            conn.execute(sql)


def test_export_twice_in_a_row_writes_nothing_the_second_time(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    first = export_parquet(db, out)
    assert first.files_written == len(mtimes(out)) > len(TABLES)
    assert first.live_pid is None
    before = {**mtimes(out), STATE_NAME: (out / STATE_NAME).stat().st_mtime_ns}
    assert main(["export", "--parquet", str(out), "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files_written"] == report["files_deleted"] == report["rows_written"] == 0
    assert report["files_unchanged"] == first.files_written
    assert {**mtimes(out), STATE_NAME: (out / STATE_NAME).stat().st_mtime_ns} == before


def test_duckdb_reading_the_export_gets_the_counts_and_sums_of_the_index(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    export_parquet(db, out)
    assert export_figures(out) == index_figures(db)
    assert {p.name for p in (out / "messages").iterdir()} == {"day=2026-01-01", "day=2026-01-03"}
    assert (out / "projects" / "part-0.parquet").is_file()
    with duckdb.connect() as conn:
        days = conn.execute(
            f"SELECT count(*) FROM read_parquet('{out}/parts/**/*.parquet', hive_partitioning=true)"
            " p JOIN read_parquet("
            f"'{out}/messages/**/*.parquet', hive_partitioning=true) m ON m.id = p.message_id "
            "WHERE p.day <> CAST(m.time_created AS DATE) OR m.day <> p.day"
        ).fetchall()
    assert days == [(0,)]


def test_a_message_changed_in_place_rewrites_only_the_partitions_of_its_day(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    export_parquet(db, out)
    before = mtimes(out)
    change(
        db,
        "UPDATE messages SET cost = cost + 1.5 WHERE id = (SELECT max(id) FROM messages "
        "WHERE CAST(time_created AS DATE) = DATE '2026-01-03' AND role = 'assistant')",
    )
    report = export_parquet(db, out)
    after = mtimes(out)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"messages/day=2026-01-03/part-0.parquet"}
    assert report.files_written == 1 and report.files_deleted == 0
    assert export_figures(out) == index_figures(db)


def test_a_deleted_session_disappears_from_the_export_with_its_emptied_partitions(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    moved = "(SELECT min(id) FROM sessions WHERE parent_id IS NULL)"
    later = "TIMESTAMP '2026-02-10 12:00:00'"
    change(  # one session alone on its own day, so deleting it empties that day
        db,
        f"UPDATE messages SET time_created = {later} WHERE session_id = {moved}",
        f"UPDATE sessions SET time_created = {later} WHERE id = {moved} OR parent_id = {moved}",
    )
    export_parquet(db, out)
    assert (out / "messages" / "day=2026-02-10" / "part-0.parquet").is_file()
    with duckdb.connect(str(db)) as conn:
        doomed = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM sessions WHERE id = {moved} OR parent_id = {moved}"
            ).fetchall()
        ]
    ids = ", ".join(f"'{s}'" for s in doomed)
    change(
        db,
        *(f"DELETE FROM {t} WHERE session_id IN ({ids})" for t in TABLES[3:]),
        f"DELETE FROM messages WHERE session_id IN ({ids})",
        f"DELETE FROM sessions WHERE id IN ({ids})",
    )
    report = export_parquet(db, out)
    assert report.files_deleted >= 2
    assert not (out / "messages" / "day=2026-02-10").exists()
    assert not (out / "sessions" / "day=2026-02-10").exists()
    assert export_figures(out) == index_figures(db)
    with duckdb.connect() as conn:
        left = conn.execute(
            f"SELECT count(*) FROM read_parquet('{out}/*/**/*.parquet', union_by_name=true, "
            f"hive_partitioning=false) WHERE session_id IN ({ids}) OR id IN ({ids})"
        ).fetchall()
    assert left == [(0,)]


def test_an_export_failing_mid_write_leaves_every_visible_file_whole_and_resumes(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "export"
    export_parquet(db, out)
    change(db, "UPDATE messages SET cost = cost + 1", "UPDATE parts SET cost = cost + 1")

    real = export.encode
    calls: list[int] = []

    def half_then_fail(rows: pa.Table, sink: IO[bytes]) -> None:
        calls.append(1)
        if len(calls) == 2:
            sink.write(b"PAR1 half a file")
            raise OSError(28, "No space left on device")
        real(rows, sink)

    monkeypatch.setattr(export, "encode", half_then_fail)
    with pytest.raises(OSError):
        export_parquet(db, out)
    assert not list(out.rglob("*.tmp"))
    with duckdb.connect() as conn:  # every visible file is a whole Parquet file
        for path in out.rglob("*.parquet"):
            conn.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()
    monkeypatch.setattr(export, "encode", real)
    export_parquet(db, out)
    assert export_figures(out) == index_figures(db)


KILLER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import indexer.export as export
real = export.encode
def half_then_die(rows, sink):
    if rows.num_rows > 50:
        sink.write(b"PAR1 half a file")
        sink.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(rows, sink)
export.encode = half_then_die
export.export_parquet(sys.argv[1], sys.argv[2])
"""


def test_an_export_killed_mid_write_leaves_only_a_hidden_temporary_swept_next_time(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    export_parquet(db, out)
    change(db, "UPDATE parts SET text_chars = coalesce(text_chars, 0) + 1")
    killed = subprocess.run(
        [sys.executable, "-c", KILLER.format(repo=str(REPO)), str(db), str(out)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = list(out.rglob("*.tmp"))
    assert leftovers and all(p.name.startswith(".") for p in leftovers)
    with duckdb.connect() as conn:
        conn.execute(f"SELECT count(*) FROM read_parquet('{out}/*/**/*.parquet')").fetchall()
    export_parquet(db, out)
    assert not list(out.rglob("*.tmp"))
    assert export_figures(out) == index_figures(db)


@pytest.fixture
def live(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect(str(db))
    server = LiveServer(ConnectionHost(conn), socket_path(db))
    try:
        yield conn
    finally:
        server.stop()
        conn.close()


def test_an_export_of_a_held_database_reads_through_its_live_endpoint(
    db: Path, tmp_path: Path, live: duckdb.DuckDBPyConnection
) -> None:
    out = tmp_path / "export"
    expected = figures(live, "{}")
    report = export_parquet(db, out)
    assert report.live_pid == os.getpid()
    assert export_figures(out) == expected
    live.execute("DELETE FROM todos")
    report = export_parquet(db, out)
    assert report.files_written == 0 and report.files_deleted >= 1
    assert not list((out / "todos").rglob("*.parquet"))


def test_a_second_export_into_the_same_folder_at_once_is_refused(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    out.mkdir()
    with open(out / LOCK_NAME, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ExportError, match="another export"):
            export_parquet(db, out)
        assert main(["export", "--parquet", str(out), "--db", str(db)]) == 1
    assert capsys.readouterr().err.strip() == f"ocindex: error: another export to {out} is running"


def test_an_export_without_a_database_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.duckdb"
    assert main(["export", "--parquet", str(tmp_path / "x"), "--db", str(missing)]) == 1
    err = capsys.readouterr().err
    assert (
        err
        == f"ocindex: error: no database at {missing}; run `ocindex index --db {missing}` first\n"
    )


def test_an_export_whose_state_was_lost_rewrites_all_and_drops_partitions_no_longer_indexed(
    db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    export_parquet(db, out)
    (out / STATE_NAME).unlink()
    stray = out / "messages" / "day=2025-06-01" / "part-0.parquet"
    stray.parent.mkdir()
    stray.write_bytes((out / "projects" / "part-0.parquet").read_bytes())
    report = export_parquet(db, out)
    assert report.files_deleted == 1 and report.files_unchanged == 0
    assert not stray.parent.exists()
    assert export_figures(out) == index_figures(db)
