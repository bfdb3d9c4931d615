"""Event→commit latency of OpenCode's SQLite store through v2: a writer process plays OpenCode
(SqliteSimulator: one transaction per change; 2.x replies streamed into session_message rows
updated in place, or 1.x parts rewritten in place; deletes with their cascade; passive
checkpoints) at a fixed rate while v2 indexes the store in this process.

    python tests/benchmarks/bench_sqlite.py [--rate 1000] [--seconds 10] [--sessions 20] [--seed 1]
        [--generation 2.x|upgraded|1.18|1.2]

Latency is measured from the writer's commit of a row version (wall clock, logged by the writer
per change with the row's time_updated) to the DuckDB commit of the first batch holding that
version or a newer one (v2's on_batch: the read's stamp is time_updated). It so includes the
file event, the poll, the 200 ms batching window, the read and the commit. The dashboard's own
figure (batch_log: submit→commit) is shown beside it. Always exits 0: this reports, it does not
gate. Not collected by pytest (bench_*.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from indexer.config import Tunables, process_env  # noqa: E402
from indexer.outcome import BatchResult, FileStatus  # noqa: E402
from indexer.pipeline.v2 import UnifiedIndexerV2  # noqa: E402
from indexer.rollout import pipeline_config  # noqa: E402
from indexer.simulate import SqliteSimulator  # noqa: E402
from indexer.sources.sqlite import make_sources  # noqa: E402

WRITER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from indexer.simulate import SqliteSimulator
root, rate, seconds, seed, log_path, generation = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
# OpenCode stamps time_updated with Date.now(): the live writer's clock starts now, after history.
sim = SqliteSimulator(root, seed=seed + 1000, clock_start_ms=int(time.time() * 1000), generation=generation)
log = []
wal = sim.db_path.with_name(sim.db_path.name + "-wal")
max_wal = [0]
def on_write(key):
    log.append((key, sim.last_time_updated, time.time()))
    if len(log) % 50 == 0:
        max_wal[0] = max(max_wal[0], wal.stat().st_size)
print("ready", flush=True)
sys.stdin.readline()
report = sim.run(rate, seconds, on_write=on_write)
sim.close()
Path(log_path).write_text(json.dumps({{"log": log, "writes": report.writes, "seconds": report.seconds,
    "deleted": sim.deleted_sessions, "max_wal": max_wal[0],
    "alive": sorted(sim.expected_rows()) + sorted(sim.expected_files())}}))
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="changes per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=20, help="history written before start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--generation",
        default="2.x",
        choices=("1.2", "1.18", "2.x", "upgraded"),
        help="the store OpenCode writes (default 2.x: replies streamed into session_message)",
    )
    parser.add_argument("--json", type=Path, dest="json_out", help="also write figures here")
    args = parser.parse_args()

    base = Path(
        tempfile.mkdtemp(
            prefix="ocindex-bench-sqlite-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
        )
    )
    root = base / "storage"
    with SqliteSimulator(root, seed=args.seed, generation=args.generation) as history:
        history.write_sessions(args.sessions)
    rows_before = len(history.expected_rows())

    commits: dict[str, list[tuple[int, float]]] = {}  # key -> [(time_updated ms, committed_at)]
    batch_p95: list[float] = []

    def on_batch(result: BatchResult) -> None:
        for read in result.reads:
            if read.status in (FileStatus.INDEXED, FileStatus.ERROR) and read.stamp is not None:
                path = read.key.rel_path  # a row's key as the writer logs it, or a file's path
                key = path.split(":", 2)[2] if path.startswith("sqlite:") else path
                commits.setdefault(key, []).append(
                    (read.stamp.mtime_ns // 1_000_000, result.committed_at)
                )
        if result.event_latency_ms:
            batch_p95.append(pct(list(result.event_latency_ms), 0.95))

    sources = make_sources([history.db_path], root)
    v2 = UnifiedIndexerV2(
        root,
        base / "index.duckdb",
        config=pipeline_config(Tunables.from_env(process_env())),
        on_batch=on_batch,
        sources=sources,
    )
    t0 = time.monotonic()
    v2.start()
    assert v2.wait_idle(120, settle_s=0.3)
    catch_up_s = time.monotonic() - t0

    log_path = base / "writes.json"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER.format(repo=str(REPO)),
            str(root),
            str(args.rate),
            str(args.seconds),
            str(args.seed),
            str(log_path),
            args.generation,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdin is not None
    assert writer.stdout.readline().strip() == "ready"
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    commits.clear()
    batch_p95.clear()
    started = time.time()
    writer.stdin.write("go\n")
    writer.stdin.flush()
    writer.wait()
    v2.wait_idle(60, settle_s=1.0)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.time() - started
    described = sources[0].describe()
    v2.stop()

    written = json.loads(log_path.read_text())
    latencies: list[float] = []
    alive = set(written["alive"])
    never = lost = 0
    for key, updated_ms, wrote_at in written["log"]:
        versions = commits.get(key, [])
        # The first commit of this version or a newer one, after the write.
        if key.startswith(("session_diff/", "session_v2/")):
            # A JSON file's stamp is its mtime, not the writer's clock; a 2.x session's usage
            # lands without a new time_updated. Either way, the first commit after the write.
            updated_ms = 0
        times = [c for u, c in versions if u >= updated_ms and c >= wrote_at]
        if times:
            latencies.append((min(times) - wrote_at) * 1000)
        elif key in alive:
            lost += 1  # never committed although the row still exists: a miss
        else:
            never += 1  # its session was deleted before the version was read
    cpu_s = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    figures = {
        "rate_target": args.rate,
        "writes": written["writes"],
        "write_seconds": written["seconds"],
        "rate_achieved": round(written["writes"] / written["seconds"], 1),
        "rows_before": rows_before,
        "catch_up_s": round(catch_up_s, 2),
        "measured": len(latencies),
        "not_committed_deleted": never,
        "not_committed_alive": lost,
        "write_to_commit_ms": {
            "p50": round(pct(latencies, 0.50), 1),
            "p95": round(pct(latencies, 0.95), 1),
            "p99": round(pct(latencies, 0.99), 1),
            "max": round(max(latencies), 1) if latencies else None,
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
        },
        "batch_submit_to_commit_p95_ms_median": round(statistics.median(batch_p95), 1)
        if batch_p95
        else None,
        "indexer_cpu_pct": round(100 * cpu_s / elapsed, 1),
        "polls": described["polls"],
        "events": described["events"],
        "last_poll_ms": described["last_poll_ms"],
        "max_wal_bytes": written["max_wal"],
        "sessions_deleted": len(written["deleted"]),
    }
    print(json.dumps(figures, indent=2))
    lat = figures["write_to_commit_ms"]
    print(
        f"\nSQLite source at {figures['rate_achieved']:.0f} changes/s for {args.seconds:.0f}s: "
        f"write→commit p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms "  # type: ignore[index]
        f"({figures['measured']} changes; indexer CPU {figures['indexer_cpu_pct']}%)"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2))
    import shutil

    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
