"""The reconciler's walk on one core against the walk shared by threads, not run in
CI: for each tree size, the stamps of every file into Arrow (`disk_table`), both ways
alternated round by round, medians printed side by side.

    .venv/bin/python tests/benchmarks/bench_walk.py [--files 20000 50000 100000 1000000]
        [--rounds 5] [--threads 2] [--dir /dev/shm/ocindex-walk]

Trees are generated once per size (bench_scale.py's layout: 100 part files a folder) and kept.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import bench_scale  # beside this script: the uniform tree

from indexer.parallel_walk import walk_parallel
from indexer.pipeline.reconciler import CHUNK_ROWS, disk_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[20_000, 50_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=max(2, len(os.sched_getaffinity(0))))
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm/ocindex-walk"))
    args = parser.parse_args()
    print(f"| files | one core, s | shared by {args.threads} threads, s | speed-up |")
    print("|---|---|---|---|")
    for files in args.files:
        root = args.dir / f"{files}-{bench_scale.PER_FOLDER}" / "storage"
        bench_scale.generate(root, files)
        seconds: dict[int, list[float]] = {1: [], args.threads: []}
        for _ in range(args.rounds):
            for threads, runs in seconds.items():
                t0 = time.perf_counter()
                table = disk_table(walk_parallel(root, True, CHUNK_ROWS, threads))
                runs.append(time.perf_counter() - t0)
                assert table.num_rows == files, table.num_rows
        one, shared = (statistics.median(runs) for runs in seconds.values())
        print(f"| {files:,} | {one:.3f} | {shared:.3f} | {one / shared:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
