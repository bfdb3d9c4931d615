"""What the dashboard costs the indexer: with the simulator writing at full speed, v2 headless
(A) against v2 with the dashboard polling it (B), alternated A/B/A/B in one run.

    python tests/benchmarks/bench_tui_overhead.py [--seconds S] [--rounds N] [--seed N]

Claim: the dashboard costs the indexer less than 10% of its headless throughput. Throughput is
file versions committed (sum of batch_log.files) over the span from the first batch start to
the last commit, drain included; latency is the p95 of batch_log.event_latency_ms. The writer
is a subprocess (OpenCode is another process), the trees live on tmpfs when /dev/shm exists,
and every run starts on a fresh root and database. Always exits 0: this reports, it does not
gate (the machine is noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from indexer.service import IndexerService  # noqa: E402
from indexer.store.database import open_database  # noqa: E402
from tui.app import OcindexApp  # noqa: E402

CLAIM_PCT = 10.0
CATCH_UP_S = 120.0
SETTLE_S = 0.5


@dataclass(frozen=True)
class Run:
    mode: str  # "A" headless, "B" with the dashboard
    round: int
    writes: int
    """Writes the simulator made (its own pace drops too when the CPU is shared)."""
    files: int
    """File versions committed: sum(batch_log.files)."""
    batches: int
    span_s: float
    """First batch start to last commit."""
    drain_files: int
    """File versions in batches started after the writer exited (the backlog it left)."""
    drain_s: float
    """Writer exit to last commit: the engine alone (with the dashboard in B) on the CPU."""
    p50_ms: float | None
    p95_ms: float | None
    caught_up: bool
    polls: int
    """Snapshots the dashboard took (B only)."""
    poll_ms: float | None
    """Mean wall time of one snapshot() (B only)."""
    load: float
    """1-minute load average at the end of the run (ours included): other work on the box."""

    @property
    def files_per_s(self) -> float:
        return self.files / self.span_s if self.span_s > 0 else 0.0

    @property
    def drain_per_s(self) -> float | None:
        return self.drain_files / self.drain_s if self.drain_s >= 1.0 else None


def bench_base() -> Path:
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="ocindex-tui-bench-", dir=parent))


class Writer:
    """`python -m indexer simulate --rate 0` as a subprocess; a thread notes when it exits."""

    def __init__(self, root: Path, seconds: float, seed: int) -> None:
        command = [sys.executable, "-m", "indexer", "simulate", "--root", str(root)]
        command += ["--rate", "0", "--duration", str(seconds), "--seed", str(seed)]
        self.proc = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.done = threading.Event()
        self.ended_at = 0.0
        """Wall time the writer exited."""
        self._out = ("", "")
        self._thread = threading.Thread(target=self._wait, name="bench-writer", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        self._out = self.proc.communicate()
        self.ended_at = time.time()
        self.done.set()

    def writes(self) -> int:
        self.done.wait()
        out, err = self._out
        if self.proc.returncode != 0:
            raise RuntimeError(f"simulator failed ({self.proc.returncode}): {err.strip()}")
        return int(json.loads(out)["writes"])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self._thread.join(10)


def idle(service: IndexerService) -> bool:
    cur = service.current
    return cur is not None and cur.is_idle(SETTLE_S)


def headless(service: IndexerService, writer: Writer) -> bool:
    """A: nothing but the engine while the writer runs; then wait for it to catch up."""
    writer.done.wait()
    assert service.current is not None
    return service.current.wait_idle(timeout_s=CATCH_UP_S, settle_s=SETTLE_S)


async def dashboard(service: IndexerService, writer: Writer) -> bool:
    """B: the same, with the dashboard at its default poll interval, pumped throughout."""
    app = OcindexApp(service)
    async with app.run_test(size=(120, 36)) as pilot:
        while not writer.done.is_set():
            await pilot.pause()
        deadline = time.monotonic() + CATCH_UP_S
        while time.monotonic() < deadline:
            await pilot.pause()
            if idle(service):
                return True
    return False


def timed(call: Callable[[], object], into: list[float]) -> Callable[[], object]:
    """`call`, recording each call's wall time in ms (a list append: no cost worth counting)."""

    def wrapper() -> object:
        t0 = time.perf_counter()
        try:
            return call()
        finally:
            into.append((time.perf_counter() - t0) * 1000)

    return wrapper


@dataclass(frozen=True)
class Figures:
    batches: int
    files: int
    span_s: float
    drain_files: int
    drain_s: float
    p50_ms: float | None
    p95_ms: float | None


def figures(db_path: Path, writer_ended_at: float) -> Figures:
    conn = open_database(db_path, read_only=True)
    try:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(files), 0), epoch(min(started_at)), "
            "epoch(max(committed_at)) FROM batch_log"
        ).fetchone()
        drain = conn.execute(
            "SELECT coalesce(sum(files), 0) FROM batch_log WHERE epoch(started_at) >= ?",
            [writer_ended_at],
        ).fetchone()
        lat = conn.execute(
            "SELECT quantile_cont(l, 0.5), quantile_cont(l, 0.95) "
            "FROM (SELECT unnest(event_latency_ms) AS l FROM batch_log)"
        ).fetchone()
    finally:
        conn.close()
    assert row is not None and drain is not None and lat is not None
    batches, files, first, last = row
    first = float(first or 0.0)
    last = float(last or 0.0)
    return Figures(
        batches=int(batches),
        files=int(files),
        span_s=last - first,
        drain_files=int(drain[0]),
        drain_s=max(0.0, last - writer_ended_at),
        p50_ms=None if lat[0] is None else float(lat[0]),
        p95_ms=None if lat[1] is None else float(lat[1]),
    )


def one_run(base: Path, mode: str, rnd: int, seconds: float, seed: int) -> Run:
    work = base / f"{rnd}-{mode}"
    root = work / "storage"
    root.mkdir(parents=True)
    db_path = work / "index.duckdb"
    service = IndexerService(root, db_path, cli_choice="v2", env={})
    service.start()
    polls: list[float] = []
    service.snapshot = timed(service.snapshot, polls)  # type: ignore[method-assign]
    try:
        writer = Writer(root, seconds, seed)
        try:
            if mode == "A":
                caught_up = headless(service, writer)
            else:
                caught_up = asyncio.run(dashboard(service, writer))
            writes = writer.writes()
        finally:
            writer.kill()
    finally:
        service.stop()
    f = figures(db_path, writer.ended_at)
    shutil.rmtree(work, ignore_errors=True)
    return Run(
        mode=mode,
        round=rnd,
        writes=writes,
        files=f.files,
        batches=f.batches,
        span_s=f.span_s,
        drain_files=f.drain_files,
        drain_s=f.drain_s,
        p50_ms=f.p50_ms,
        p95_ms=f.p95_ms,
        caught_up=caught_up,
        polls=len(polls),
        poll_ms=statistics.mean(polls) if polls else None,
        load=os.getloadavg()[0],
    )


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def mean(values: list[float]) -> float:
    return statistics.mean(values) if values else 0.0


def pct_lower(base: float, other: float) -> float:
    """How much lower `other` is than `base`, in percent (negative: higher)."""
    return (base - other) / base * 100 if base > 0 else 0.0


def report(runs: list[Run], seconds: float) -> None:
    print()
    print(
        f"{'run':<4}{'mode':<10}{'sim writes':>11}{'committed':>10}{'batches':>8}"
        f"{'span s':>7}{'files/s':>9}{'drain s':>8}{'drain/s':>9}{'p50 ms':>8}"
        f"{'p95 ms':>8}{'polls':>6}{'poll ms':>8}{'load':>6}"
    )
    for r in runs:
        name = "headless" if r.mode == "A" else "dashboard"
        flag = "" if r.caught_up else "  (did not catch up)"
        drain = "-" if r.drain_per_s is None else f"{r.drain_per_s:,.0f}"
        polls = str(r.polls) if r.mode == "B" else "-"
        print(
            f"{r.round}{r.mode:<3}{name:<10}{r.writes:>11,}{r.files:>10,}{r.batches:>8,}"
            f"{r.span_s:>7.1f}{r.files_per_s:>9,.0f}{r.drain_s:>8.1f}{drain:>9}"
            f"{ms(r.p50_ms):>8}{ms(r.p95_ms):>8}{polls:>6}{ms(r.poll_ms):>8}{r.load:>6.1f}{flag}"
        )
    groups = {"A": [r for r in runs if r.mode == "A"], "B": [r for r in runs if r.mode == "B"]}
    rate = {m: [r.files_per_s for r in g] for m, g in groups.items()}
    drain = {m: [r.drain_per_s for r in g if r.drain_per_s is not None] for m, g in groups.items()}
    p95 = {m: [r.p95_ms for r in g if r.p95_ms is not None] for m, g in groups.items()}
    overhead = pct_lower(mean(rate["A"]), mean(rate["B"]))
    drain_overhead = pct_lower(mean(drain["A"]), mean(drain["B"]))
    p95_change = -pct_lower(mean(p95["A"]), mean(p95["B"]))
    spread = pct_lower(max(rate["A"]), min(rate["A"]))  # headless run-to-run spread

    def fmt_range(values: list[float]) -> str:
        return f"{min(values):,.0f}-{max(values):,.0f}" if values else "-"

    print()
    n = len(groups["A"])
    print(
        f"{f'mean of {n} runs each':<26}{'files/s':>9}{'range':>14}{'drain/s':>9}"
        f"{'range':>14}{'event p95 ms':>14}"
    )
    for label, m in (("A headless", "A"), ("B dashboard (0.5 s poll)", "B")):
        print(
            f"{label:<26}{mean(rate[m]):>9,.0f}{fmt_range(rate[m]):>14}"
            f"{mean(drain[m]):>9,.0f}{fmt_range(drain[m]):>14}{mean(p95[m]):>14,.0f}"
        )
    print(
        f"{'overhead (A-B)/A':<26}{overhead:>8.1f}%{'':>14}{drain_overhead:>8.1f}%{'':>14}"
        f"{p95_change:>+13.1f}%"
    )
    verdict = "holds" if overhead < CLAIM_PCT else "does NOT hold"
    print()
    print(
        f"dashboard throughput overhead {overhead:.1f}% (claim < {CLAIM_PCT:.0f}%: {verdict}); "
        f"drain-only {drain_overhead:.1f}%; headless run-to-run spread {spread:.1f}%; "
        f"writer {seconds:g}s per run"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="writer seconds per run (default 8)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="A/B pairs (at least 2)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed, the same every run")
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=600.0,
        help="v2's periodic reconcile, seconds (default 600: only the startup scan runs; the "
        "product's 30 s lands a full scan inside the longer runs only, which skews A/B)",
    )
    args = parser.parse_args(argv)
    os.environ["OCINDEX_RECONCILE_INTERVAL_S"] = str(args.reconcile_interval)
    rounds = max(2, args.rounds)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # watchdog re-adding a watch for a folder created during a scan: harmless, and very long
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"watchdog\.")
    base = bench_base()
    print(
        f"trees under {base}; {rounds} rounds of A (headless) / B (dashboard), alternated; "
        f"writer {args.seconds:g}s per run; reconcile interval {args.reconcile_interval:g}s"
    )
    runs: list[Run] = []
    try:
        for rnd in range(1, rounds + 1):
            for mode in ("A", "B"):
                t0 = time.perf_counter()
                run = one_run(base, mode, rnd, args.seconds, args.seed)
                runs.append(run)
                print(
                    f"  round {rnd} {mode}: {run.files_per_s:,.0f} files/s, "
                    f"p95 {ms(run.p95_ms)} ms ({time.perf_counter() - t0:.1f}s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(runs, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
