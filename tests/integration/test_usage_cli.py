"""`ocindex usage` on simulated stores of every generation equals the independent plain-SQL
recount (tests/support/recount.py); an index of schema 5 is completed by reading its records
again; a database held by a running ocindex is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from indexer.simulate import SqliteSimulator
from indexer.store.schema import set_meta
from tests.faults.support import REPO, run_cli
from tests.support.recount import recount

CLASSES = ("input", "output", "reasoning", "cache_read", "cache_write")


def indexed(tmp_path: Path, generation: str, seed: int = 11) -> tuple[Path, Path, Path]:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    sim = SqliteSimulator(root, seed=seed, generation=generation)
    sim.write_sessions(8)
    sim.close()
    done = run_cli("index", "--storage", root, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    return root, db, sim.db_path


def usage(db: Path, *flags: str) -> dict[str, Any]:
    done = run_cli("usage", "--db", db, "--json", "--tz", "UTC", *flags)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("generation", ["1.18", "2.x", "upgraded"])
def test_usage_by_day_equals_the_recount_of_every_generation(
    tmp_path: Path, generation: str
) -> None:
    _, db, store = indexed(tmp_path, generation)
    want = recount(store)
    report = usage(db, "--by", "day")
    totals, compaction = report["totals"], report["compaction"]
    assert isinstance(totals, dict) and isinstance(compaction, dict)
    assert isinstance(report["rows"], list)
    # Usage is the assistant messages' plus the 2.x compaction requests' own, each once.
    assistants = {k: v - compaction[k] for k, v in totals.items()}
    for c in CLASSES:
        assert assistants[f"tokens_{c}"] == want[f"tokens_{c}"], c
    assert assistants["cost"] == pytest.approx(float(want["cost"]))
    assert compaction["tokens_input"] == want["compaction_tokens_input"]
    assert compaction["cost"] == pytest.approx(float(want["compaction_cost"]))
    assert totals["tokens_total"] == sum(int(totals[f"tokens_{c}"]) for c in CLASSES)
    summed = {k: sum(r[k] for r in report["rows"]) for k in ("messages", "tokens_total")}
    assert summed == {k: totals[k] for k in summed}
    assert want["assistant_messages"] > 0


def test_usage_groupings_and_range_agree_with_the_totals(tmp_path: Path) -> None:
    _, db, _ = indexed(tmp_path, "2.x", seed=4)
    whole = usage(db)["totals"]
    for by in ("week", "month", "model", "project", "session"):
        report = usage(db, "--by", by)
        rows = report["rows"]
        assert isinstance(rows, list) and rows
        assert sum(r["messages"] for r in rows) == report["totals"]["messages"]
        assert report["totals"] == whole
    empty = usage(db, "--since", "2099-01-01")
    assert empty["rows"] == [] and empty["totals"]["messages"] == 0
    table = run_cli("usage", "--db", db, "--by", "model")
    assert table.returncode == 0 and "TOTAL" in table.stdout


def test_an_index_of_schema_5_is_completed_by_reading_its_records_again(tmp_path: Path) -> None:
    root, db, _ = indexed(tmp_path, "1.18", seed=2)
    conn = duckdb.connect(str(db))
    try:
        want = conn.execute("SELECT count(tool_target), count(text) FROM parts").fetchone()
        conn.execute("UPDATE parts SET tool_target = NULL, text = NULL")  # as schema 5 left them
        set_meta(conn, "schema_version", "5")
    finally:
        conn.close()
    assert want is not None and want[0] > 0 and want[1] > 0
    done = run_cli("index", "--storage", root, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    conn = duckdb.connect(str(db), read_only=True)
    try:
        got = conn.execute("SELECT count(tool_target), count(text) FROM parts").fetchone()
        left = conn.execute("SELECT count(*) FROM file_index WHERE mtime_ns IS NULL").fetchone()
    finally:
        conn.close()
    assert got == want and left == (0,)


def test_usage_on_a_database_held_by_a_running_ocindex_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    _, db, _ = indexed(tmp_path, "2.x", seed=3)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys; c=duckdb.connect({str(db)!r}); "
            "print('held', flush=True); sys.stdin.read()",
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = run_cli("usage", "--db", db)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "held by a running ocindex" in lines[0], done.stderr
