"""`ocindex bench`: every performance figure side by side, printed and optionally written as JSON.
Never measures anything itself: indexer.bench does, imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    from indexer.bench import default_bench_dir, format_table, run_bench

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
