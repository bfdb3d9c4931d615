"""`ocindex bench` on tiny inputs: every section runs and reports the documented keys."""

from __future__ import annotations

from pathlib import Path

from indexer.bench import (
    bench_bulk,
    bench_poc,
    bench_realtime,
    bench_reconcile,
    format_table,
    peak_rss_mb,
    percentile,
)


def test_every_section_reports_its_keys(tmp_path: Path) -> None:
    lines: list[str] = []
    poc = bench_poc(tmp_path, 300, lines.append)
    assert poc["files"] == 300 and poc["files_per_s"] > 0 and poc["batch_p95_ms"] > 0
    rec = bench_reconcile(tmp_path, 500, lines.append)
    assert rec["files"] == 500 and rec["seconds"] > 0
    bulk = bench_bulk(tmp_path, 300, lines.append)
    assert bulk["files_per_s"] > 0 and bulk["read_json_auto_files_per_s"] > 0
    rt = bench_realtime(tmp_path, 0.3, 200.0, lines.append, catch_up_s=3.0)
    for version in ("v1", "v2"):
        assert rt[version]["files_per_s"] > 0
        assert set(rt[version]["latency_ms"]) == {"p50", "p95", "p99"}
    assert rt["v2"]["caught_up"] and rt["ratio"] is not None
    table = format_table(
        {"poc": poc, "realtime": rt, "bulk": bulk, "reconcile": rec, "peak_rss_mb": peak_rss_mb()}
    )
    assert table.count("\n") == 10 and "reconcile, 500 unchanged files" in table
    assert any("generating" in line for line in lines)


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(100)], 0.95) == 95.0
