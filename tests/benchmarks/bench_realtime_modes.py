"""Realtime v2 under settings side by side, not run in CI: each variant (a set of environment
variables) indexes the same replayed workloads, the variants alternated round by round, each run
in a fresh process so the settings are read as `ocindex run` reads them.

    .venv/bin/python tests/benchmarks/bench_realtime_modes.py [--files 20000] [--rounds 3]
        [--variant "name:VAR=value,VAR=value" ...] [--dir /dev/shm/ocindex-modes]

Workloads (`indexer.bench`'s replay writer, another process, bytes loaded before the clock):
paced at 1,000 files/s (4,000 files), paced at 5,000 files/s (10,000 files) and unthrottled
(`--files`: the capacity). Without --variant: the watcher in the indexer's process against the
watcher in its own, and group commit off against on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

DEFAULT_VARIANTS = (
    "watcher in-process, window only:OCINDEX_WATCHER_PROCESS=0,OCINDEX_IDLE_SEAL_MS=200",
    "watcher in-process:OCINDEX_WATCHER_PROCESS=0",
    "as shipped (own watcher process, idle seal 20 ms):",
)
WORKLOADS = ((1000.0, 4000), (5000.0, 10000), (0.0, None))


def one_run(base: Path, files: int) -> list[dict[str, Any]]:
    """In this process: the three workloads through a fresh v2 each; one row each."""
    import logging
    import warnings

    from indexer import bench

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    source = bench._tree(base, f"replay-{files}", files // 60 + 10, 303, lambda m: None)
    rows = []
    for pace, count in WORKLOADS:
        load = bench._replayed(source, pace, count or files)
        out = bench._realtime_once(base, "v2", load, 120.0, lambda m: None)
        rows.append({"pace": pace, **out})
    return rows


def label(pace: float) -> str:
    return "capacity" if pace == 0 else f"{pace:,.0f}/s"


def figures(runs: list[list[dict[str, Any]]], workload: int, key: str) -> list[float]:
    """One figure of one workload over the rounds: "p95" (ms) or a key of the run."""
    return [
        float(r[workload]["latency_ms"]["p95"] if key == "p95" else r[workload][key]) for r in runs
    ]


def listed(values: list[float]) -> str:
    each = ", ".join(f"{v:,.0f}" for v in values)
    return f"{each} (median {statistics.median(values):,.0f})"


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    env = dict(a.split("=", 1) for a in assignments.split(",") if a.strip())
    return name, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000, help="the capacity run's files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", help='"name:VAR=value,..."')
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm/ocindex-modes"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(one_run(args.dir, args.files)))
        return 0
    variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]
    results: dict[str, list[list[dict[str, Any]]]] = {name: [] for name, _ in variants}
    for round_no in range(1, args.rounds + 1):
        for name, env in variants:
            command = [sys.executable, __file__, "--child", "--files", str(args.files)]
            command += ["--dir", str(args.dir)]
            done = subprocess.run(
                command, env={**os.environ, **env}, capture_output=True, text=True, check=True
            )
            rows = json.loads(done.stdout.strip().splitlines()[-1])
            results[name].append(rows)
            shown = "; ".join(
                f"{label(r['pace'])}: {r['files_per_s']:,.0f} files/s "
                f"p95 {r['latency_ms']['p95']} ms"
                for r in rows
            )
            print(f"round {round_no} {name}: {shown}", flush=True)
    print(
        "\n| variant | paced 1,000/s: p95 ms | paced 5,000/s: files/s, p95 ms | capacity files/s |"
    )
    print("|---|---|---|---|")
    for name, runs in results.items():
        print(
            f"| {name} | {listed(figures(runs, 0, 'p95'))} | "
            f"{listed(figures(runs, 1, 'files_per_s'))}; {listed(figures(runs, 1, 'p95'))} | "
            f"{listed(figures(runs, 2, 'files_per_s'))} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
