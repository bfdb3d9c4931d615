"""The index while a daemon holds it, with real processes: `ocindex run` in one, `ocindex query`,
`status --json`, `rollback` and `index` in others, through the owner-only socket; then the same
queries on the idle file. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.live.address import socket_path
from indexer.live.client import LiveClient, reach
from indexer.live.readonly import Refused
from indexer.simulate import OpenCodeSimulator
from tests.faults.support import Spawned, census_of, cli, poll, run_cli, spawned

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

COUNT = "select count(*) as n from messages"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    OpenCodeSimulator(path, seed=3).write_sessions(2)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.duckdb"


@pytest.fixture
def daemon(root: Path, db: Path) -> Iterator[Spawned]:
    with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as child:
        child.wait_for("live query endpoint on", timeout_s=60)
        yield child


def messages_in(root: Path) -> int:
    return len(list((root / "message").glob("*/*.json")))


def query_json(db: Path, sql: str) -> list[dict[str, object]]:
    done = run_cli("query", sql, "--db", db, "--format", "json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def live_count(db: Path) -> int:
    client = reach(db)
    assert client is not None, "no live endpoint"
    try:
        return int(str(client.query(COUNT).table.to_pylist()[0]["n"]))
    finally:
        client.close()


def status_json(db: Path) -> dict[str, object]:
    done = run_cli("status", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def settled(db: Path, root: Path) -> bool:
    """The daemon has indexed every message on disk, tracks every file and has nothing pending
    or queued."""
    client = reach(db)
    assert client is not None, "no live endpoint"
    try:
        live = client.status(3600)["report"]["live"]
        idle = live["pending_files"] == 0 and live["queue_depth"] == 0
        files = sum(1 for p in root.rglob("*") if p.is_file())
        tracked = client.query("select count(*) n from file_index").table.to_pylist()
        return bool(
            idle
            and client.query(COUNT).table.to_pylist() == [{"n": messages_in(root)}]
            and tracked == [{"n": files}]  # every file, not only the messages, committed
        )
    finally:
        client.close()


def stop(child: Spawned) -> str:
    child.signal(signal.SIGTERM)
    assert child.wait(120) == 0, child.log()
    return "\n".join(child.out)


def test_a_running_daemon_answers_query_status_and_rollback_and_loses_no_file(
    root: Path, db: Path, daemon: Spawned
) -> None:
    sock = socket_path(db)
    assert sock == db.with_name("index.duckdb.sock") or len(str(db)) > 90
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    writer = Spawned(
        cli("simulate", "--root", root, "--rate", "40", "--duration", "3", "--seed", "7")
    )
    try:
        rows = query_json(db, COUNT)  # while the simulator writes and the daemon indexes
        assert len(rows) == 1 and int(str(rows[0]["n"])) >= 0
        report = status_json(db)
        live = report["live"]
        assert isinstance(live, dict) and live["pid"] == daemon.pid and live["active"] == "v2"
        assert isinstance(report["tables"], dict) and "messages" in report["tables"]
        assert writer.wait(120) == 0, writer.log()
    finally:
        writer.kill()
    final = messages_in(root)
    poll(lambda: live_count(db) == final, 60, f"{final} messages indexed live")
    assert query_json(db, COUNT) == [{"n": final}]

    done = run_cli("rollback", "--db", db, "--reason", "test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"rolled back live in process {daemon.pid}: "), done.stdout
    live = status_json(db)["live"]
    assert isinstance(live, dict) and live["active"] == "v1"
    OpenCodeSimulator(root, seed=9).write_sessions(1)  # v1 now indexes what comes next
    after = messages_in(root)
    assert after > final
    poll(lambda: live_count(db) == after, 60, f"{after} messages indexed by v1")

    assert "on v1" in stop(daemon)
    assert not sock.exists()
    assert census_of(db, root) == []
    assert query_json(db, COUNT) == [{"n": after}]  # the idle file, read-only
    rollout = json.loads(db.with_name("index.duckdb.rollout.json").read_text())
    assert rollout["rollout_percent"] == 0 and rollout["active_version"] == "v1"
    switches = query_json(db, "select from_version, to_version, reason from switch_log")
    assert switches == [{"from_version": "v2", "to_version": "v1", "reason": "test"}]


WRITES = [
    "insert into messages select * from messages",
    "update file_index set status = 'error'",
    "delete from messages",
    "drop table messages",
    "create table t (a int)",
    "copy messages to '{out}'",
    "attach '{out}' as other",
    "set memory_limit = '1GB'",
    "pragma enable_profiling",
    "install httpfs",
    "load httpfs",
    "checkpoint",
    "explain analyze delete from messages",
    "select 1; delete from messages",
]
FINGERPRINT = (
    "select (select count(*) from messages) m, (select count(*) from file_index) f, "
    "(select count(*) from information_schema.columns) c, current_setting('memory_limit') t"
)


def test_writes_sent_through_the_socket_are_refused_and_change_nothing(
    root: Path, db: Path, daemon: Spawned, tmp_path: Path
) -> None:
    out = tmp_path / "written"
    poll(lambda: settled(db, root), 60, "the daemon idle")
    client = LiveClient(socket_path(db))
    try:
        before = client.query(FINGERPRINT).table.to_pylist()
        for sql in WRITES:
            with pytest.raises(Refused) as caught:
                client.query(sql.format(out=out))
            assert str(caught.value).startswith("refused: "), sql
        assert client.query(FINGERPRINT).table.to_pylist() == before
    finally:
        client.close()
    for sql in ("delete from messages", "explain analyze update file_index set status = 'x'"):
        done = run_cli("query", sql, "--db", db)
        assert done.returncode == 1
        assert done.stderr.startswith("ocindex: error: refused: "), done.stderr
        assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    again = run_cli("index", "--storage", root, "--db", db)
    assert again.returncode == 1
    assert f"is live: ocindex process {daemon.pid} is already indexing it" in again.stderr
    assert not out.exists()
    stop(daemon)
    assert query_json(db, FINGERPRINT) == before


def test_a_slow_query_times_out_and_never_holds_back_a_batch(
    root: Path, db: Path, daemon: Spawned
) -> None:
    timed = run_cli(
        "query", "select count(*) from range(1000000000000)", "--db", db, "--timeout", "0.5"
    )
    assert timed.returncode == 1
    assert timed.stderr == "ocindex: error: query stopped after 0.5s (--timeout)\n"
    poll(lambda: settled(db, root), 60, "the daemon idle")
    # One look may catch a brief query of the daemon's own (a commit, a scan): the fewest of
    # several is the idle count, and the slow query is one that stays.
    baseline = min(_cursors_open(db) for _ in range(5))
    slow = Spawned(
        cli("query", "select count(*) from range(1000000000000)", "--db", db, "--timeout", "600")
    )
    try:
        poll(
            lambda: all(_cursors_open(db) > baseline for _ in range(3)),
            30,
            "the slow query to start",
        )
        OpenCodeSimulator(root, seed=11).write_sessions(1)
        more = messages_in(root)
        poll(lambda: live_count(db) == more, 60, "a batch committed during the slow query")
        assert slow.proc.poll() is None, "the slow query ended before the batch: no proof"
    finally:
        slow.kill()  # the client leaves: the daemon interrupts its query
    poll(lambda: _cursors_open(db) == baseline, 30, "the abandoned query to stop")
    stop(daemon)


def _cursors_open(db: Path) -> int:
    """How many connections and cursors the daemon's DuckDB has open (each query has its own,
    closed when the query ends), besides the one asking."""
    client = reach(db)
    assert client is not None
    try:
        rows = client.query(
            "select count(distinct connection_id) as n from duckdb_live_query_metrics()"
        ).table.to_pylist()
        return int(str(rows[0]["n"])) - 1
    finally:
        client.close()


def test_the_idle_path_answers_like_the_live_one_and_a_stale_socket_is_ignored(
    root: Path, db: Path
) -> None:
    with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as child:
        child.wait_for("live query endpoint on", timeout_s=60)
        poll(lambda: live_count(db) == messages_in(root), 60, "the sessions indexed")
        live = run_cli(
            "query", "select id, role from messages order by id", "--db", db, "--format", "csv"
        )
        stop(child)
    assert live.returncode == 0, live.stderr
    stale = _stale_socket(socket_path(db))
    idle = run_cli(
        "query", "select id, role from messages order by id", "--db", db, "--format", "csv"
    )
    assert idle.returncode == 0, idle.stderr
    assert idle.stdout == live.stdout and idle.stdout.count("\n") == messages_in(root) + 1
    assert stale.exists()
    status = status_json(db)
    assert "live" not in status
    with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as child:
        child.wait_for("live query endpoint on", timeout_s=60)  # the stale socket replaced
        assert live_count(db) == messages_in(root)
        stop(child)


def _stale_socket(path: Path) -> Path:
    """A socket file nobody listens on, as a killed daemon leaves it."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    return path


def test_the_python_entry_point_reads_the_live_index_and_refuses_a_write(
    root: Path, db: Path, daemon: Spawned
) -> None:
    import indexer

    final = messages_in(root)
    poll(lambda: live_count(db) == final, 60, "the sessions indexed")
    table = indexer.query(COUNT, db)
    assert table.to_pylist() == [{"n": final}]
    with pytest.raises(Refused):
        indexer.query("delete from messages", db)
    assert indexer.query("select 1 as one from range(5)", db, limit=2).num_rows == 2
