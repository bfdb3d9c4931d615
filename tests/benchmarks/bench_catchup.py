"""Catch-up on worker processes, not run in CI: `ocindex index` with its reading workers off
(OCINDEX_READ_WORKERS=0) and on (one per core, JSON files included:
OCINDEX_READ_FILES_ON_WORKERS=1), alternated on the same trees, then the batch
size from which a batch read by the workers beats one read on the indexer's own thread.

    .venv/bin/python tests/benchmarks/bench_catchup.py [--files 100000] [--sessions 205]
        [--store-sessions 0] [--rounds 2] [--workers N] [--dir /dev/shm/ocindex-catchup]

Trees: the simulator's (`--sessions` whole sessions, every kind of file, about 100 files a
session), bench_scale's uniform part files (`--files`, 0 to skip) and, with --store-sessions,
today's user: an OpenCode 1.2 store beside a JSON tree of older sessions (their files history). Each is generated once and
reused. CPU is the index process's and its workers' (user + system); peak RSS the largest one
of them reached (the index process: a worker is smaller).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench_scale  # beside this script: the uniform tree
import duckdb

from indexer.config import cores
from indexer.pipeline.read_pool import PoolConfig, ReadPool
from indexer.pipeline.reader import ProcessorConfig, read_file
from indexer.scan import scan_tree
from indexer.simulate import OpenCodeSimulator, SqliteSimulator
from indexer.store.rows import write_parsed
from indexer.store.schema import migrate

BATCH_SIZES = (100, 250, 500, 1000, 2000, 5000)


def simulator_tree(base: Path, sessions: int) -> Path:
    root = base / f"sim-{sessions}" / "storage"
    marker = root.parent / ".complete"
    if not marker.exists():
        OpenCodeSimulator(root, seed=202).write_sessions(sessions)
        marker.touch()
    return root


def store_tree(base: Path, store_sessions: int, json_sessions: int) -> Path:
    """Today's user: an OpenCode 1.2 store (opencode.db beside the tree) holding
    `store_sessions` sessions, and the JSON files of `json_sessions` older ones (history)."""
    root = base / f"store-{store_sessions}-json-{json_sessions}" / "storage"
    marker = root.parent / ".complete"
    if not marker.exists():
        OpenCodeSimulator(root, seed=203).write_sessions(json_sessions)
        with SqliteSimulator(root, seed=204, generation="1.2") as store:
            store.write_sessions(store_sessions)
        marker.touch()
    return root


def uniform_tree(base: Path, files: int) -> Path:
    root = base / f"uniform-{files}-{bench_scale.PER_FOLDER}" / "storage"
    bench_scale.generate(root, files)
    return root


def in_child(make_tree: Callable[..., Path], *args: object) -> Path:
    """Build a tree in a process of its own. Linux hands a process's peak RSS on to the children
    it starts (exec keeps the larger), so a bench that had grown while generating a store would
    report its own peak as every `ocindex index` run's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(make_tree, args)


def index_once(root: Path, workers: int) -> dict[str, float]:
    """One `ocindex index` into a fresh database: its figures, CPU and peak RSS."""
    with tempfile.TemporaryDirectory(dir=root.parent.parent) as scratch:
        env = {
            **bench_scale.code_env(),
            "OCINDEX_READ_WORKERS": str(workers),
            "OCINDEX_READ_FILES_ON_WORKERS": "1",  # JSON files too: what this bench compares
        }
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "indexer", "index", "--indexer", "v2", "--json",
             "--storage", str(root), "--db", str(Path(scratch) / "index.duckdb")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/",
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = proc.stdout.read(), proc.stderr.read()  # a few lines each
        # wait4: this run's own usage (its workers' included), not every child's so far
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"ocindex index exited {proc.returncode}: {stderr}")
    summary = json.loads(stdout)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "files": summary["files_seen"],
        "files_per_s": summary["files_per_s"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "errors": summary["error"],
    }


def batch_crossover(root: Path, workers: int, rounds: int) -> list[dict[str, float]]:
    """Per batch size: the median wall time to read a batch and build its rows on this thread,
    and on the workers (started beforehand: a catch-up pays that once)."""
    config = ProcessorConfig()
    keys = [s.key for s in scan_tree(root)]
    pool = ReadPool(root, config, PoolConfig(workers=workers, min_files=1))
    pool.read(keys[:10])  # start the workers
    conn = duckdb.connect()
    try:
        migrate(conn)
        rows = []
        for size in BATCH_SIZES:
            if size > len(keys):
                break
            here, there = [], []
            for r in range(max(rounds, 3)):
                batch = keys[r * size % max(len(keys) - size, 1) :][:size]
                t0 = time.perf_counter()
                reads = [read_file(root, k, config) for k in batch]
                conn.execute("BEGIN")
                write_parsed(conn, [x.parsed for x in reads if x.parsed is not None])
                conn.execute("ROLLBACK")
                here.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pooled = pool.read(batch)
                assert pooled is not None
                conn.execute("BEGIN")
                write_parsed(conn, [x.parsed for x in pooled if x.parsed is not None])
                conn.execute("ROLLBACK")
                there.append(time.perf_counter() - t0)
            h, t = sorted(here)[len(here) // 2], sorted(there)[len(there) // 2]
            rows.append(
                {"batch": size, "here_ms": round(h * 1e3, 1), "workers_ms": round(t * 1e3, 1),
                 "speedup": round(h / t, 2)}
            )  # fmt: skip
        return rows
    finally:
        pool.close()
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="uniform tree (0: none)")
    parser.add_argument("--sessions", type=int, default=205, help="simulator tree (0: none)")
    parser.add_argument(
        "--store-sessions",
        type=int,
        default=0,
        help="also a tree of this many sessions in an OpenCode 1.2 store beside --sessions "
        "sessions of JSON history (0: none)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=cores())
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm/ocindex-catchup"))
    args = parser.parse_args()
    base = args.dir.resolve()
    trees = []
    if args.sessions:
        trees.append(in_child(simulator_tree, base, args.sessions))
    if args.files:
        trees.append(in_child(uniform_tree, base, args.files))
    if args.store_sessions:
        trees.append(in_child(store_tree, base, args.store_sessions, args.sessions))
    print(f"load average {os.getloadavg()[0]:.1f}, {args.workers} workers", file=sys.stderr)
    result: dict[str, object] = {"workers": args.workers, "trees": {}}
    for root in trees:
        runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for _ in range(args.rounds):  # alternated: a noisy minute hits both
            runs["off"].append(index_once(root, 0))
            runs["on"].append(index_once(root, args.workers))
        ratios = [
            round(on["files_per_s"] / off["files_per_s"], 2)
            for off, on in zip(runs["off"], runs["on"], strict=True)
        ]
        result["trees"][root.parent.name] = {**runs, "on_over_off": ratios}  # type: ignore[index]
        print(f"{root.parent.name}: on/off {ratios}", file=sys.stderr)
    result["batches"] = batch_crossover(trees[0], args.workers, args.rounds)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
