"""`ocindex bench` on tiny inputs: every section runs and reports the documented keys.

The default suite runs the sections that fit in a second on one-session trees; the end-to-end
run of every section (about 11 s: the realtime section starts four indexers and four writer
processes) carries the `bench` marker and runs with `pytest -m bench`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer import bench
from indexer.bench import (
    bench_bulk,
    bench_poc,
    bench_realtime,
    bench_reconcile,
    peak_rss_mb,
    percentile,
)
from indexer.cli.bench import format_table
from indexer.simulate import OpenCodeSimulator, SimulationReport

POC_KEYS = {"files", "batch_size", "files_per_s", "batch_p50_ms", "batch_p95_ms", "batch_max_ms"}
RECONCILE_KEYS = {"files", "seconds", "runs", "walk_threads", "seconds_one_core"}
BULK_KEYS = {
    "files",
    "seconds",
    "files_per_s",
    "read_json_auto_files",
    "read_json_auto_files_per_s",
}


class OneSessionSimulator(OpenCodeSimulator):
    """Writes one session however many the bench asks for: a tree in a fraction of a second."""

    def write_sessions(self, sessions: int) -> SimulationReport:
        return super().write_sessions(min(sessions, 1))


def test_the_poc_reconcile_and_bulk_sections_report_every_key_on_tiny_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "OpenCodeSimulator", OneSessionSimulator)
    lines: list[str] = []
    poc = bench_poc(tmp_path, 20, lines.append)
    assert set(poc) == POC_KEYS
    assert poc["files"] == 20 and poc["files_per_s"] > 0 and poc["batch_p95_ms"] > 0
    rec = bench_reconcile(tmp_path, 20, lines.append)
    assert set(rec) == RECONCILE_KEYS
    assert rec["files"] == 20 and rec["seconds"] > 0 and len(rec["runs"]) == 3
    assert rec["walk_threads"] == 1 and rec["seconds_one_core"] > 0  # too small to share
    bulk = bench_bulk(tmp_path, 20, lines.append)
    assert set(bulk) == BULK_KEYS
    assert bulk["files_per_s"] > 0 and bulk["read_json_auto_files_per_s"] > 0
    table = format_table({"poc": poc, "bulk": bulk, "reconcile": rec, "peak_rss_mb": peak_rss_mb()})
    assert table.count("\n") == 5 and "reconcile, 20 unchanged files" in table
    assert any("generating" in line for line in lines)


@pytest.mark.bench
def test_every_section_reports_its_keys(tmp_path: Path) -> None:
    lines: list[str] = []
    poc = bench_poc(tmp_path, 300, lines.append)
    assert poc["files"] == 300 and poc["files_per_s"] > 0 and poc["batch_p95_ms"] > 0
    rec = bench_reconcile(tmp_path, 500, lines.append)
    assert rec["files"] == 500 and rec["seconds"] > 0
    bulk = bench_bulk(tmp_path, 300, lines.append)
    assert bulk["files_per_s"] > 0 and bulk["read_json_auto_files_per_s"] > 0
    rt = bench_realtime(tmp_path, 0.3, 200.0, lines.append, catch_up_s=3.0, capacity_files=400)
    for version in ("v1", "v2"):
        assert rt[version]["files_per_s"] > 0
        assert set(rt[version]["latency_ms"]) == {"p50", "p95", "p99"}
    assert rt["v2"]["caught_up"] and rt["ratio"] is not None
    capacity = rt["capacity"]
    assert capacity["writer_files_per_s"] > 0 and isinstance(capacity["writer_limited"], bool)
    assert capacity["v2"]["writes"] == 400 and capacity["v2"]["caught_up"]
    v2 = capacity["v2"]  # every file indexed once at least: distinct files never outnumber versions
    assert 0 < v2["distinct_files_per_s"] <= v2["files_per_s"]
    assert capacity["distinct_ratio"] is not None
    assert set(rt["paced_replay_v2"]) == {"1000", "5000"}
    table = format_table(
        {"poc": poc, "realtime": rt, "bulk": bulk, "reconcile": rec, "peak_rss_mb": peak_rss_mb()}
    )
    assert table.count("\n") == 13 and "reconcile, 500 unchanged files" in table
    assert any("generating" in line for line in lines)


def test_percentile_takes_the_nearest_rank_and_is_none_without_values() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(100)], 0.95) == 95.0


def test_caught_up_waits_for_a_row_of_every_file_not_only_an_idle_pipeline(
    tmp_path: Path,
) -> None:
    root = tmp_path / "storage"
    OpenCodeSimulator(root, seed=5).write_sessions(1)
    engine = bench._fresh_engine(root, tmp_path / "i.duckdb", "v2", watch=False, bulk=False)
    conn = engine.writer.cursor()
    try:
        # Not started: nothing is pending, so the pipeline is idle, but no file is indexed yet.
        assert engine.indexer.is_idle()
        files = sum(1 for p in root.rglob("*") if p.is_file())
        assert bench._caught_up(engine.indexer, conn, root, timeout_s=0.5) == (False, files)
        engine.indexer.start()  # its startup scan indexes the tree
        assert bench._caught_up(engine.indexer, conn, root, timeout_s=30) == (True, files)
        (root / "session" / "global").mkdir(parents=True, exist_ok=True)
        (root / "session" / "global" / "ses_unseen.json").write_text("{}")  # never watched
        assert bench._caught_up(engine.indexer, conn, root, timeout_s=0.5) == (False, files + 1)
    finally:
        engine.indexer.stop(close=False)
        conn.close()
        engine.writer.close()
