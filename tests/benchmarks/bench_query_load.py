"""Batch latency of a live index with and without a client querying it: a writer process plays
OpenCode (`ocindex simulate --rate`) for the whole run while an IndexerService in this process
indexes it and serves its live endpoint; phases alternate between no client and a client process
that runs a heavy query in a loop through the socket (Arrow Flight), so both are measured in one
run under the same writer and the same machine load.

    python tests/benchmarks/bench_query_load.py [--rate 200] [--phase-seconds 15] [--rounds 3]
        [--sessions 150] [--seed 1]

"Batch p95" is the p95 of the batches' processing time (read + DuckDB transaction, what the
dashboard and `status` call batch p95), over every batch committed in the phases of each kind;
the event→commit p95 (median over batches of each batch's own p95) is shown beside it. The ratio
is loaded / unloaded; the goal (issue 13) is at most 1.20. Always exits 0: this reports, it does
not gate. Not collected by pytest (bench_*.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from indexer.bench import percentile  # noqa: E402
from indexer.service import IndexerService  # noqa: E402
from indexer.simulate import OpenCodeSimulator  # noqa: E402
from indexer.snapshot import BatchSummary  # noqa: E402

HEAVY = """
SELECT s.id, s.title, count(*) AS pairs, sum(length(p.text)) AS chars,
       max(md5(coalesce(p.text, '') || coalesce(q.text, ''))) AS digest
FROM sessions s JOIN parts p ON p.session_id = s.id
JOIN parts q ON q.session_id = s.id AND q.id <= p.id
GROUP BY ALL ORDER BY pairs DESC
"""
"""Every pair of parts of each session, with a hash of their text: about 0.4 s on 2 idle cores
over the default history, all of it inside the indexing process (DuckDB, 2 threads)."""

CLIENT = """
import json, sys, time
sys.path.insert(0, {repo!r})
from indexer.live.client import reach
db, seconds, sql = sys.argv[1], float(sys.argv[2]), sys.argv[3]
client = reach(db)
assert client is not None, "no live endpoint"
durations = []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    t0 = time.monotonic()
    client.query(sql, 1000, 120.0)
    durations.append(time.monotonic() - t0)
client.close()
print(json.dumps(durations))
"""


def pct(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (indexer.bench's), to 0.1 ms."""
    value = percentile(values, q)
    return None if value is None else round(value, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="files per second written")
    parser.add_argument("--phase-seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of phases (off, on)")
    parser.add_argument("--sessions", type=int, default=150, help="history written before start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, dest="json_out", help="also write figures here")
    args = parser.parse_args()

    base = Path(
        tempfile.mkdtemp(
            prefix="ocindex-bench-query-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None
        )
    )
    root, db = base / "storage", base / "index.duckdb"
    OpenCodeSimulator(root, seed=args.seed).write_sessions(args.sessions)
    service = IndexerService(root, db, cli_choice="v2", env={})
    service.start()
    assert service.current is not None and service.current.wait_idle(300, settle_s=0.5)
    cursor = service.cursor()
    rows = cursor.execute("SELECT count(*) FROM parts").fetchall()[0][0]
    cursor.close()

    seconds = args.phase_seconds * 2 * args.rounds + 5
    writer = subprocess.Popen(
        [sys.executable, "-m", "indexer", "simulate", "--root", str(root), "--rate",
         str(args.rate), "--duration", str(seconds), "--seed", str(args.seed + 1)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    batches: dict[int, BatchSummary] = {}
    phases: list[tuple[str, float, float, list[float]]] = []
    for _ in range(args.rounds):
        for kind in ("off", "on"):
            started = time.time()
            durations: list[float] = []
            if kind == "on":
                done = subprocess.run(
                    [sys.executable, "-c", CLIENT.format(repo=str(REPO)), str(db),
                     str(args.phase_seconds), HEAVY],
                    cwd=REPO, capture_output=True, text=True, check=True,
                )  # fmt: skip
                durations = json.loads(done.stdout)
            else:
                time.sleep(args.phase_seconds)  # a measured phase, not a synchronisation
            phases.append((kind, started, time.time(), durations))
            for b in service.current.recent_batches(500):
                batches[b.batch_id] = b
    writer.terminate()
    writer.wait()
    service.stop()

    def of(kind: str) -> list[BatchSummary]:
        windows = [(s, e) for k, s, e, _ in phases if k == kind]
        return [b for b in batches.values() if any(s <= b.committed_at < e for s, e in windows)]

    figures: dict[str, object] = {
        "rate_target": args.rate,
        "phase_seconds": args.phase_seconds,
        "rounds": args.rounds,
        "parts_at_start": rows,
    }
    p95: dict[str, float | None] = {}
    for kind in ("off", "on"):
        chosen = of(kind)
        queries = [d for k, _, _, ds in phases if k == kind for d in ds]
        processing = [b.processing_ms for b in chosen]
        events = [b.event_p95_ms for b in chosen if b.event_p95_ms is not None]
        p95[kind] = pct(processing, 0.95)
        figures["without_client" if kind == "off" else "with_client"] = {
            "batches": len(chosen),
            "files": sum(b.files for b in chosen),
            "batch_p50_ms": pct(processing, 0.50),
            "batch_p95_ms": p95[kind],
            "batch_max_ms": round(max(processing), 1) if processing else None,
            "event_to_commit_p95_ms_median": round(statistics.median(events), 1)
            if events
            else None,
            "queries": len(queries),
            "query_s_median": round(statistics.median(queries), 3) if queries else None,
        }
    off, on = p95["off"], p95["on"]
    ratio = round(on / off, 2) if on is not None and off else None
    figures["ratio_p95"] = ratio
    figures["within_20_percent"] = ratio is not None and ratio <= 1.2
    print(json.dumps(figures, indent=2))
    loaded = figures["with_client"]
    assert isinstance(loaded, dict)
    print(
        f"\nbatch p95 {off} ms without a client, {on} ms with a client running a heavy query "
        f"in a loop ({loaded['queries']} queries, median {loaded['query_s_median']}s): "
        f"ratio {ratio} (goal ≤ 1.20) at {args.rate:.0f} files/s"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
