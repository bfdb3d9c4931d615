"""`ocindex bench`: every performance figure side by side, printed as a table and optionally
written as JSON. Never measures anything itself: indexer.bench does, imported only when the
command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from indexer.cli.options import Subparsers


def add_bench(sub: Subparsers) -> None:
    p = sub.add_parser(
        "bench",
        help="measure throughput, latency, reconcile time and memory",
        description="Measure everything side by side on this machine: the plan's proof of "
        "concept, v1 vs v2 realtime, bulk catch-up next to read_json_auto, a 100k-file "
        "reconcile, and peak RSS. Trees are generated once under --dir and reused.",
    )
    p.add_argument(
        "--files",
        default=20_000,
        help="files for the bulk catch-up, 1 to 10000000 (default 20000)",
    )
    p.add_argument(
        "--json", type=Path, dest="json_out", help="also write the figures to this JSON file"
    )
    p.add_argument(
        "--quick", action="store_true", help="shorter realtime runs (under 2 minutes in all)"
    )
    p.add_argument("--ab", action="store_true", help="only the v1 vs v2 realtime comparison")
    p.add_argument(
        "--only",
        choices=("poc", "realtime", "bulk", "reconcile"),
        action="append",
        help="run only these sections",
    )
    p.add_argument(
        "--dir",
        type=Path,
        help="where to keep the generated trees (default /dev/shm/ocindex-bench)",
    )
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from indexer.bench import default_bench_dir, run_bench

    sections = tuple(
        args.only or (("realtime",) if args.ab else ("poc", "realtime", "bulk", "reconcile"))
    )
    result = run_bench(
        args.dir or default_bench_dir(),
        args.files,
        args.quick,
        sections,
        lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_table(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


def format_table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table, as docs/benchmarks.md quotes them."""
    rows: list[tuple[str, str]] = []
    poc = result.get("poc")
    if poc:
        rows.append(
            (
                f"poc: {poc['files']:,} files in batches of 100",
                f"{poc['files_per_s']:,.0f} files/s, batch p50 {poc['batch_p50_ms']} ms, "
                f"p95 {poc['batch_p95_ms']} ms",
            )
        )
    rt = result.get("realtime")
    if rt:
        for v in ("v1", "v2"):
            lat = rt[v]["latency_ms"]
            rows.append(
                (
                    f"realtime {v}, writer at {rt['rate_writes_per_s']:,.0f} writes/s",
                    f"{rt[v]['files_per_s']:,.0f} files/s, caught up: {rt[v]['caught_up']}, "
                    f"event→commit p50/p95/p99 {lat['p50']}/{lat['p95']}/{lat['p99']} ms",
                )
            )
        for v in ("v1", "v2"):
            cap = rt["capacity"][v]
            rows.append(
                (
                    f"realtime {v}, capacity",
                    f"{cap['files_per_s']:,.0f} files/s "
                    f"({cap['distinct_files_per_s']:,.0f} distinct files/s)",
                )
            )
        rows.append(
            (
                "realtime v2/v1: paced, capacity",
                f"{rt['ratio']}×, {rt['capacity']['ratio']}× "
                f"(distinct files: {rt['capacity']['distinct_ratio']}×)",
            )
        )
        cap = rt["capacity"]
        rows.append(
            (
                f"capacity writer (replay of {cap['files']:,} pre-generated files)",
                f"{cap['writer_files_per_s']:,.0f} files/s"
                + (
                    " — slower than v2 needed: capacity is a lower bound"
                    if cap["writer_limited"]
                    else ""
                ),
            )
        )
        for pace, run in rt.get("paced_replay_v2", {}).items():
            lat = run["latency_ms"]
            rows.append(
                (
                    f"realtime v2, replay paced at {int(pace):,} files/s",
                    f"{run['files_per_s']:,.0f} files/s, caught up: {run['caught_up']}, "
                    f"event→commit p50/p95/p99 {lat['p50']}/{lat['p95']}/{lat['p99']} ms",
                )
            )
    bulk = result.get("bulk")
    if bulk:
        rows.append(
            (
                f"bulk catch-up, {bulk['files']:,} files",
                f"{bulk['files_per_s']:,.0f} files/s "
                f"(DuckDB read_json_auto: {bulk['read_json_auto_files_per_s']:,.0f})",
            )
        )
    rec = result.get("reconcile")
    if rec:
        rows.append(
            (
                f"reconcile, {rec['files']:,} unchanged files",
                f"{rec['seconds']} s, its walk on {rec['walk_threads']} threads "
                f"(on one: {rec['seconds_one_core']} s)",
            )
        )
    rows.append(("peak RSS", f"{result['peak_rss_mb']} MB"))
    return "\n".join(["| measure | figure |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])
