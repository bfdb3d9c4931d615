"""`ocindex bench`: every performance figure measured side by side in one run, printed and
optionally written as JSON. Never imported by the pipeline.

Trees are generated once under --dir and reused, since deleting and recreating big trees
slows file creation on these machines for a minute (DESIGN §4). The default --dir is on tmpfs
when /dev/shm exists, so the figures measure the indexer rather than the disk.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from indexer.config import ENV_OPENCODE_DB, Flags, IndexerConfig, Tunables, process_env, temp_dir
from indexer.engine import Engine, assemble
from indexer.kinds import classify
from indexer.pipeline.accumulator import Batch, PendingEntry, SealReason, Trigger
from indexer.pipeline.processor import BatchProcessor
from indexer.pipeline.reconciler import Reconciler
from indexer.rollout import Indexer, pipeline_config
from indexer.scan import scan_tree, walk_files
from indexer.simulate import OpenCodeSimulator
from indexer.simulate.replay import replay_in_process
from indexer.store.database import open_database
from indexer.store.schema import migrate
from indexer.store.tracking import FileTracker


def default_bench_dir() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else temp_dir()
    return base / "ocindex-bench"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fresh_db(path: Path) -> duckdb.DuckDBPyConnection:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    conn = open_database(path)
    migrate(conn)
    return conn


def _fresh_engine(root: Path, db: Path, version: str, *, watch: bool, bulk: bool) -> Engine:
    """One version's engine on a new database, on the JSON tree alone whatever $OPENCODE_DB says."""
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    env = {k: v for k, v in process_env().items() if k != ENV_OPENCODE_DB}
    config = IndexerConfig.load(Flags(storage=root, db=db, indexer=version), env)
    return assemble(config, watch=watch, bulk=bulk)


def _tree(base: Path, name: str, sessions: int, seed: int, log: Callable[[str], None]) -> Path:
    """A simulator tree, generated once and reused while its marker file exists."""
    root = base / name / "storage"
    marker = base / name / f".complete-{sessions}-{seed}"
    if not marker.exists():
        log(f"  generating {name} ({sessions} sessions)…")
        shutil.rmtree(base / name, ignore_errors=True)
        OpenCodeSimulator(root, seed=seed).write_sessions(sessions)
        marker.touch()
    return root


def bench_poc(base: Path, files: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The plan's proof of concept: N files through the processor in batches of 100."""
    root = _tree(base, "poc", max(10, files // 100 + 5), 101, log)
    keys = [s.key for s in scan_tree(root) if s.key.is_indexed_kind][:files]
    conn = _fresh_db(base / "poc.duckdb")
    processor = BatchProcessor(conn, root)
    # One batch after another through the processor: each latency is that batch's own work.
    # (v2 reads batch N+1 while N commits; on 2 cores that changed nothing measurable here.)
    latencies: list[float] = []
    t0 = time.perf_counter()
    for seq, i in enumerate(range(0, len(keys), 100)):
        now = time.monotonic()
        chunk = keys[i : i + 100]
        entries = tuple(PendingEntry(k, Trigger.WATCHER, now, time.time()) for k in chunk)
        started = time.perf_counter()
        processor.process(Batch(seq, SealReason.MAX_FILES, entries, now))
        latencies.append((time.perf_counter() - started) * 1000)
    seconds = time.perf_counter() - t0
    conn.close()
    return {
        "files": len(keys),
        "batch_size": 100,
        "files_per_s": round(len(keys) / seconds, 1),
        "batch_p50_ms": round(percentile(latencies, 0.5) or 0, 2),
        "batch_p95_ms": round(percentile(latencies, 0.95) or 0, 2),
        "batch_max_ms": round(max(latencies), 2),
    }


Load = Callable[[Path], tuple[int, float]]
"""Writes into a watched root in another process; returns (files written, writer seconds)."""


def _simulated(rate: float, write_s: float, seed: int) -> Load:
    """The simulator writing a live story (content generated as it goes) at `rate` writes/s."""

    def load(root: Path) -> tuple[int, float]:
        command = [sys.executable, "-m", "indexer", "simulate", "--root", str(root)]
        command += ["--seed", str(seed), "--rate", str(rate), "--duration", str(write_s)]
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return int(json.loads(done.stdout)["writes"]), time.perf_counter() - t0

    return load


def _replayed(source: Path, rate: float, limit: int) -> Load:
    """Pre-generated files copied in by a process that loaded their bytes before the clock."""

    def load(root: Path) -> tuple[int, float]:
        out = replay_in_process(source, root, rate, limit)
        return int(out["files"]), float(out["seconds"])

    return load


def _realtime_once(
    base: Path,
    version: str,
    load: Load,
    catch_up_s: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """A writer process loads the watched tree while one indexer indexes it.

    files_per_s counts file versions committed over the span of the indexer's own work, so an
    indexer that falls behind is measured at its real pace, not the writer's.
    """
    work = base / f"realtime-{version}"
    shutil.rmtree(work, ignore_errors=True)  # small trees only: the cost is in big ones
    root = work / "storage"
    root.mkdir(parents=True)
    engine = _fresh_engine(root, work / "index.duckdb", version, watch=True, bulk=False)
    writer, indexer = engine.writer, engine.indexer
    indexer.start()
    # OpenCode is another process: so is the writer here, or it would share our GIL.
    t0 = time.perf_counter()
    writes, writer_s = load(root)
    write_done = time.perf_counter()
    conn = writer.cursor()
    caught_up, counted = _caught_up(indexer, conn, root, catch_up_s)
    t_end = time.perf_counter()
    indexer.stop(flush=caught_up, close=False)
    expected = counted if counted is not None else sum(1 for _ in walk_files(root))
    row = conn.execute(
        "SELECT coalesce(sum(files), 0), epoch(max(committed_at)) - epoch(min(started_at)), "
        "coalesce(max(files), 0) FROM batch_log WHERE indexer_version = ?",
        [version],
    ).fetchone()
    lat = [
        float(r[0])
        for r in conn.execute(
            "SELECT unnest(event_latency_ms) FROM batch_log WHERE indexer_version = ?", [version]
        ).fetchall()
    ]
    indexed_row = conn.execute(
        "SELECT count(*) FROM file_index WHERE status = 'indexed'"
    ).fetchone()
    writer.close()
    files_done = int(row[0]) if row else 0
    indexed = int(indexed_row[0]) if indexed_row else 0
    span = float(row[1]) if row and row[1] else (t_end - t0)
    log(
        f"  {version}: {writes} writes of {expected} files in {write_done - t0:.1f}s, "
        f"indexed {files_done} file versions, caught up: {caught_up}"
    )
    return {
        "writes": writes,
        "files_on_disk": expected,
        "file_versions_indexed": files_done,
        "indexed_files": indexed,
        "caught_up": caught_up,
        "writer_files_per_s": round(writes / max(writer_s, 1e-9), 1),
        "files_per_s": round(files_done / max(span, 1e-9), 1),
        # A file read twice (its create and its close in two batches) is two versions, one file.
        "distinct_files_per_s": round(indexed / max(span, 1e-9), 1),
        "largest_batch": int(row[2]) if row else 0,
        "latency_ms": {
            "p50": _r(percentile(lat, 0.5)),
            "p95": _r(percentile(lat, 0.95)),
            "p99": _r(percentile(lat, 0.99)),
        },
    }


def _caught_up(
    indexer: Indexer, conn: duckdb.DuckDBPyConnection, root: Path, timeout_s: float
) -> tuple[bool, int | None]:
    """Wait until the indexer is idle with a row for each file under root; False when
    timeout_s passed first. Idle alone is not enough: the watcher may still be listing a new
    folder's files, and the pipeline then waits for events still to come. The tree is counted
    once the indexer is first idle, so the count never competes with it for the GIL; the count
    is returned too (None: the indexer was never idle), as the writer has finished with it."""
    deadline = time.monotonic() + timeout_s
    files: int | None = None
    while (left := deadline - time.monotonic()) > 0:
        if indexer.wait_idle(timeout_s=left, settle_s=0.25):
            if files is None:
                files = sum(1 for _ in walk_files(root))
            row = conn.execute(
                "SELECT count(*) FROM file_index WHERE status != 'deleted'"
            ).fetchone()
            if row is not None and row[0] >= files:
                return True, files
            time.sleep(0.05)  # polling the index until the deadline
    return False, files


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


CAPACITY_FILES = 20_000
"""Files the unthrottled replay writer copies in for the capacity runs (and at most for the
paced ones)."""


def bench_realtime(
    base: Path,
    write_s: float,
    rate: float,
    log: Callable[[str], None],
    catch_up_s: float = 20.0,
    capacity_files: int = CAPACITY_FILES,
) -> dict[str, Any]:
    """One simulated workload paced at `rate` through v1 then v2; the capacity of each (the
    most files/s it sustains) under a replay writer far faster than either; and v2's latency
    under replays paced at 1,000 and 5,000 files/s. The paced simulator's ratio is a lower
    bound (v2 keeps up, so its files/s is the writer's pace); the capacity ratio is the
    ceiling's. A capacity run whose writer was not clearly faster than the indexer is flagged."""
    out: dict[str, Any] = {"rate_writes_per_s": rate, "seconds": write_s}
    for version in ("v1", "v2"):
        log(f"  simulator paced at {rate:.0f} writes/s:")
        out[version] = _realtime_once(base, version, _simulated(rate, write_s, 77), 20.0, log)
    sessions = capacity_files // 60 + 10  # about 60 files a session
    source = _tree(base, f"replay-{capacity_files}", sessions, 303, log)
    capacity: dict[str, Any] = {"files": capacity_files}
    for version in ("v1", "v2"):
        log("  replay, unthrottled:")
        load = _replayed(source, 0.0, capacity_files)
        capacity[version] = _realtime_once(base, version, load, catch_up_s, log)
    writer_rate = min(capacity[v]["writer_files_per_s"] for v in ("v1", "v2"))
    capacity["writer_files_per_s"] = writer_rate
    capacity["writer_limited"] = writer_rate < 1.5 * capacity["v2"]["files_per_s"]
    out["capacity"] = capacity
    out["ratio"] = _ratio(out["v2"]["files_per_s"], out["v1"]["files_per_s"])
    capacity["ratio"] = _ratio(capacity["v2"]["files_per_s"], capacity["v1"]["files_per_s"])
    capacity["distinct_ratio"] = _ratio(
        capacity["v2"]["distinct_files_per_s"], capacity["v1"]["distinct_files_per_s"]
    )
    paced: dict[str, Any] = {}
    for pace in (1000.0, 5000.0):
        log(f"  replay paced at {pace:.0f} files/s (v2):")
        files = min(capacity_files, int(pace * write_s))
        paced[f"{pace:.0f}"] = _realtime_once(
            base, "v2", _replayed(source, pace, files), catch_up_s, log
        )
    out["paced_replay_v2"] = paced
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 1) if b else None


def bench_bulk(base: Path, files: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Catch-up of N existing files with `ocindex index` (v2), next to read_json_auto."""
    root = _tree(base, f"bulk-{files}", max(10, files // 100 + 5), 202, log)
    paths = [str(root / rel) for rel, _, _ in walk_files(root)][:files]
    engine = _fresh_engine(root, base / "bulk.duckdb", "v2", watch=False, bulk=True)
    writer, indexer = engine.writer, engine.indexer
    t0 = time.perf_counter()
    indexer.start()
    indexer.wait_idle(timeout_s=600)
    seconds = time.perf_counter() - t0
    indexer.stop(close=False)
    total = writer.run(lambda conn: conn.execute("SELECT count(*) FROM file_index").fetchone())
    writer.close()
    n_indexed = int(total[0]) if total else 0
    ref = duckdb.connect()
    ref.execute("SET preserve_insertion_order = false")
    objects = [
        p
        for p in paths
        if classify(os.path.relpath(p, root)) is not None
        and "/todo/" not in p
        and "/session_diff/" not in p
    ]
    t1 = time.perf_counter()
    ref.execute(
        "SELECT count(*) FROM read_json_auto(?, union_by_name = true, filename = '_src')", [objects]
    ).fetchone()
    ref_seconds = time.perf_counter() - t1
    ref.close()
    return {
        "files": n_indexed,
        "seconds": round(seconds, 2),
        "files_per_s": round(n_indexed / seconds, 1),
        "read_json_auto_files": len(objects),
        "read_json_auto_files_per_s": round(len(objects) / ref_seconds, 1),
    }


PARTS_PER_MESSAGE = 4
"""The reconcile's tree lays its files out as OpenCode does, a folder per message of a few
parts (3.5-4 in the real stores of the shared corpus and in the simulator's trees); a folder
costs the walk almost twice what a file does. Until 2026-12-04 it held 100 a folder, which
flattered the figure (1M files: 1.1 s to reconcile that way, 1.9 s this way). The same layout
as tests/benchmarks/bench_scale.py's PER_FOLDER."""


def bench_reconcile(base: Path, files: int, log: Callable[[str], None]) -> dict[str, Any]:
    """A full scan of N unchanged, already indexed files."""
    root = base / f"reconcile-{files}" / "storage"
    marker = root.parent / f".complete-{PARTS_PER_MESSAGE}"
    if not marker.exists():
        log(f"  generating {files} small files…")
        shutil.rmtree(root.parent, ignore_errors=True)
        for i in range(files):
            folder = root / "part" / f"msg_{i // PARTS_PER_MESSAGE:06d}"
            if i % PARTS_PER_MESSAGE == 0:
                folder.mkdir(parents=True)
            (folder / f"prt_{i:08d}.json").write_bytes(b'{"id":"prt","type":"text"}')
        marker.touch()
    conn = _fresh_db(base / "reconcile.duckdb")
    stats = list(scan_tree(root))
    FileTracker(conn, "v2").mark_indexed([(s.key, s.stamp, "-") for s in stats])
    conn.execute("CHECKPOINT")
    # As shipped (the walk shared by one thread per core) and on one core, alternated.
    shipped = pipeline_config(Tunables.from_env(process_env())).reconciler
    if len(stats) < shipped.parallel_walk_min_files:
        shipped = replace(shipped, walk_threads=1)  # what a tree this small gets
    seconds: dict[int, list[float]] = {shipped.walk_threads: [], 1: []}
    for _ in range(3):
        for threads, runs in seconds.items():
            config = replace(shipped, walk_threads=threads)
            rec = Reconciler(root, conn.cursor, lambda _k, _t: None, set, config)
            t0 = time.perf_counter()
            report = rec.scan_now()
            runs.append(time.perf_counter() - t0)
            assert report.findings == 0, "the reconcile tree changed under the benchmark"
    conn.close()
    return {
        "files": len(stats),
        "seconds": round(statistics.median(seconds[shipped.walk_threads]), 3),
        "runs": [round(s, 3) for s in seconds[shipped.walk_threads]],
        "walk_threads": shipped.walk_threads,
        "seconds_one_core": round(statistics.median(seconds[1]), 3),
    }


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_bench(
    base: Path, files: int, quick: bool, sections: tuple[str, ...], log: Callable[[str], None]
) -> dict[str, Any]:
    base.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "duckdb": duckdb.__version__,
            "dir": str(base),
        },
        "quick": quick,
    }
    plan: dict[str, Callable[[], dict[str, Any]]] = {
        "poc": lambda: bench_poc(base, 10_000, log),
        "realtime": lambda: bench_realtime(
            base,
            2.0 if quick else 10.0,
            2000.0,
            log,
            catch_up_s=10.0 if quick else 20.0,
            # The 20,000 files either way: a run of 5,000 lasts ~0.4 s, a quarter of it
            # the first cold batches while the writer and the watcher take the cores.
            capacity_files=CAPACITY_FILES,
        ),
        "bulk": lambda: bench_bulk(base, files, log),
        "reconcile": lambda: bench_reconcile(base, 100_000, log),
    }
    for name in sections:
        log(f"{name}…")
        t0 = time.perf_counter()
        result[name] = plan[name]()
        log(f"  {name} done in {time.perf_counter() - t0:.1f}s: {json.dumps(result[name])}")
    result["peak_rss_mb"] = peak_rss_mb()
    return result
