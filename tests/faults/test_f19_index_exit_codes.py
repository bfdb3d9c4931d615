"""F19: `ocindex index` tells the truth in its exit code.

An OpenCode store (`opencode.db`) held under an exclusive lock used to give "indexed N of N
files", exit code 0, with none of its rows; a file left pending when --settle-timeout ran out
did too. Now both exit 1 with the summary still printed, one `ocindex: error:` line on stderr
saying what was not read, and the same reasons under `failures` (and `unread_sources`) in the
--json summary. Once the lock is gone, or the file is whole, the next `index` exits 0 and the
index holds everything. A store in any state but ok at the end (an unknown schema, a named
file that is not there) fails the same way, one line per store; every discovered store is
listed under `sources` in --json with its state, message and row counts.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import orjson
import pytest

from indexer.simulate import OpenCodeSimulator, SqliteSimulator
from indexer.sources.sqlite import SqliteSource
from tests.faults.support import census_of, cli, reading, run_cli, spawned, write_now
from tests.helpers import wait_until

EXCLUSIVE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("SELECT count(*) FROM session").fetchall()
print("held", flush=True)
sys.stdin.read()
"""


def store_problems(db: Path, store: Path) -> list[str]:
    """The census of a store: every row of it is an indexed file_index entry, nothing of the
    index is pending or in error, and its data tables hold rows."""
    stamps = SqliteSource(store).stamps()
    assert stamps is not None, "the store must be readable for its census"
    rows = set(stamps.column("path").to_pylist())
    assert rows, "the store holds no rows"
    with reading(db) as conn:
        tracked = dict(conn.execute("SELECT file_path, status FROM file_index").fetchall())
        parts = conn.execute("SELECT count(*) FROM parts").fetchone()
    problems = [f"{p}: not indexed ({tracked.get(p)})" for p in rows if tracked.get(p) != "indexed"]
    problems += [f"{p}: {s}" for p, s in tracked.items() if s in ("pending", "error")]
    if not parts or not parts[0]:
        problems.append("no part rows")
    return problems


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_a_store_under_an_exclusive_lock_fails_index_and_names_it(
    tmp_path: Path, root: Path, db: Path, as_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCINDEX_LOCK_WAIT_S", "1")  # how long a busy store is scanned again
    sim = SqliteSimulator(root, seed=81)
    sim.write_sessions(2)
    sim.close()
    store = tmp_path / "opencode.db"
    extra = ["--json"] if as_json else []
    with spawned([sys.executable, "-c", EXCLUSIVE, str(store)], stdin=True) as holder:
        assert wait_until(lambda: holder.out == ["held"], 30), holder.log()
        done = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", *extra)
        assert holder.proc.poll() is None, "the holder must still hold the store"
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    reason = f"could not read {store} (busy: database is locked)"
    assert done.stderr.splitlines()[-1] == f"ocindex: error: {reason}"
    if as_json:
        summary = json.loads(done.stdout)
        assert summary["failures"] == [reason]
        assert summary["unread_sources"] == [
            {"path": str(store), "state": "busy", "message": "database is locked: retrying"}
        ]
        assert summary["indexed"] > 0  # the JSON files beside the store were still indexed
    else:
        assert done.stdout.startswith("indexed ") and done.stdout.count("\n") == 1
    again = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert again.returncode == 0, again.stderr
    assert "failures" not in json.loads(again.stdout)
    assert store_problems(db, store) == []


def test_files_left_pending_at_the_settle_timeout_fail_index(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    OpenCodeSimulator(root, seed=82).write_sessions(1)
    # Cut off mid-write just now: pending (not error) for OCINDEX_SETTLE_S, an hour here.
    monkeypatch.setenv("OCINDEX_SETTLE_S", "3600")
    torn = root / "part" / "msg_torn" / "prt_torn.json"
    whole = orjson.dumps({"id": "prt_torn", "type": "text", "text": "finally whole"})
    write_now(torn, whole[:20])
    done = run_cli(
        "index", "--storage", root, "--db", db, "--indexer", "v2", "--json", "--settle-timeout", "1"
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    reason = "1 file(s) left pending after --settle-timeout 1s (see `ocindex status`)"
    summary = json.loads(done.stdout)
    assert summary["pending"] == 1 and summary["failures"] == [reason]
    assert summary["unread_sources"] == []
    assert done.stderr.splitlines()[-1] == f"ocindex: error: {reason}"
    assert "Traceback" not in done.stderr
    write_now(torn, whole)
    again = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["pending"] == 0
    assert census_of(db, root) == []


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ocindex: error: ")]


def store_with_table_foo_only(store: Path, root: Path) -> str:
    with closing(sqlite3.connect(store)) as conn:
        conn.execute("CREATE TABLE foo (x)")
        conn.commit()
    return "session"


def store_whose_session_lacks_time_updated(store: Path, root: Path) -> str:
    with SqliteSimulator(root, seed=84) as sim:
        sim.write_sessions(1)
    with closing(sqlite3.connect(store)) as conn:
        conn.execute("ALTER TABLE session DROP COLUMN time_updated")
        conn.commit()
    return "time_updated"


@pytest.mark.parametrize(
    "make_store", [store_with_table_foo_only, store_whose_session_lacks_time_updated]
)
def test_a_store_of_unknown_schema_fails_index_with_one_line_naming_it(
    tmp_path: Path, root: Path, db: Path, make_store: Callable[[Path, Path], str]
) -> None:
    OpenCodeSimulator(root, seed=83).write_sessions(1)
    store = tmp_path / "opencode.db"
    missing = make_store(store, root)
    done = run_cli("index", "--storage", root, "--db", db)  # no flags: v2, the default
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = error_lines(done.stderr)
    assert line.startswith(f"ocindex: error: could not read {store} (unknown_schema: ")
    assert missing in line, line
    assert done.stdout.startswith("indexed ") and " with v2 " in done.stdout
    as_json = run_cli("index", "--storage", root, "--db", db, "--json")
    assert as_json.returncode == 1, as_json.stderr
    summary = json.loads(as_json.stdout)
    [source] = summary["sources"]
    assert (source["name"], source["kind"], source["path"], source["state"]) == (
        "sqlite:opencode.db",
        "sqlite",
        str(store),
        "unknown_schema",
    )
    assert missing in str(source["message"]) and source["rows"] == {}
    assert summary["unread_sources"] == [{k: source[k] for k in ("path", "state", "message")}]
    assert summary["indexed"] > 0  # the JSON files were indexed all the same


def test_a_readable_store_is_listed_ok_and_index_exits_0(
    tmp_path: Path, root: Path, db: Path
) -> None:
    with SqliteSimulator(root, seed=85) as sim:
        sim.write_sessions(2)
    store = tmp_path / "opencode.db"
    done = run_cli("index", "--storage", root, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    assert error_lines(done.stderr) == []
    summary = json.loads(done.stdout)
    assert summary["indexer"] == "v2" and "failures" not in summary
    [source] = summary["sources"]
    assert source == {
        "name": "sqlite:opencode.db",
        "kind": "sqlite",
        "path": str(store),
        "state": "ok",
        "message": "",
        "generation": "1.x",
        "rows": source["rows"],
    }
    # One row count per table, as keys: todo rows count once per session, like the index's.
    prefix = "sqlite:opencode.db:"
    with reading(db) as conn:
        tracked = conn.execute(
            "SELECT split_part(substr(file_path, ?), '/', 1), count(*) FROM file_index "
            "WHERE starts_with(file_path, ?) AND status = 'indexed' GROUP BY 1",
            [len(prefix) + 1, prefix],
        ).fetchall()
    assert source["rows"] == dict(tracked) and source["rows"]["session"] == 2
    legacy = run_cli("index", "--storage", root, "--db", db, "--json", "--indexer", "v1")
    assert legacy.returncode == 0, legacy.stderr
    [unread] = json.loads(legacy.stdout)["sources"]
    assert (unread["path"], unread["state"]) == (str(store), "not_read")


def test_a_named_store_that_is_not_there_fails_index(tmp_path: Path, root: Path, db: Path) -> None:
    OpenCodeSimulator(root, seed=86).write_sessions(1)
    nowhere = tmp_path / "nowhere.db"
    done = run_cli("index", "--storage", root, "--db", db, "--opencode-db", nowhere)
    assert done.returncode == 1, (done.stdout, done.stderr)
    [line] = error_lines(done.stderr)
    assert line.startswith(f"ocindex: error: could not read {nowhere} (missing: ")
    assert not nowhere.exists()


def test_a_store_busy_for_a_while_then_read_is_fine(
    tmp_path: Path, root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCINDEX_LOCK_WAIT_S", "60")
    with SqliteSimulator(root, seed=87) as sim:
        sim.write_sessions(2)
    store = tmp_path / "opencode.db"
    with spawned([sys.executable, "-c", EXCLUSIVE, str(store)], stdin=True) as holder:
        assert wait_until(lambda: holder.out == ["held"], 30), holder.log()
        with spawned(cli("index", "--storage", root, "--db", db, "--json")) as index:
            index.wait_for("busy: database is locked")
            assert holder.proc.stdin is not None
            holder.proc.stdin.close()  # the holder lets go while index still waits
            assert index.wait(120) == 0, index.log()
    assert error_lines("\n".join(index.err)) == []
    [source] = json.loads("\n".join(index.out))["sources"]
    assert source["state"] == "ok"
    assert store_problems(db, store) == []
