"""A fair A/B trial: one generated workload replayed through v1 then v2, each in its own process on
its own scratch database and watched tree. Never touches the live index; never imports Textual.

The parent (`Trial.run`, in any thread) generates the OpenCode files once, then for each version
starts two processes of its own: this module's `main` (the indexer under test, so its CPU time is
its own and the dashboard's GIL is not shared) and `indexer.simulate.replay` (the writer, as in
`ocindex bench`). Progress and the result come back as JSON lines; the scratch folder is removed
whatever happens, and `cancel()` ends both processes.

    python -m indexer.trial VERSION STORAGE_ROOT DB_PATH [--catch-up S]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from indexer.bench import default_bench_dir, percentile
from indexer.config import ENV_OPENCODE_DB, Flags, IndexerConfig, process_env
from indexer.engine import assemble
from indexer.rollout import Indexer
from indexer.simulate import OpenCodeSimulator

CATCH_UP_S = 60.0
CATCH_UP_FILES_PER_S = 25.0
"""After the writer ends, an indexer has CATCH_UP_S plus a second per CATCH_UP_FILES_PER_S files
of the workload (v1 manages about 100 files/s on a quiet machine) before it is reported as not
caught up."""
SETTLE_S = 0.5
"""Quiet time after the last commit that counts as caught up once every written file is in the
index (watch events may still be on their way before that)."""
QUIET_S = 5.0
"""Quiet this long, an indexer has done all it will: the files it lacks are the closing scan's
catches (events it missed)."""
CPU_CLOCK = "user+system CPU of the indexer's own process while it indexed (getrusage)"
VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class Workload:
    """A burst of `files` OpenCode files (generated from `seed`) written at `rate` files/s
    (0: as fast as the writer goes)."""

    files: int = 2_000
    rate: float = 0.0
    seed: int = 303

    @property
    def name(self) -> str:
        pace = ", unpaced" if self.rate <= 0 else f" at {self.rate:,.0f} files/s"
        return f"{self.files:,} files{pace}"


PRESETS: tuple[Workload, ...] = (
    Workload(2_000, 0.0),
    Workload(500, 0.0),
    Workload(2_000, 500.0),
    Workload(10_000, 0.0),
)
"""The workloads the dashboard offers; the first is the default."""


@dataclass(frozen=True)
class IndexerTrial:
    """One indexer's figures on the workload."""

    version: str
    files_written: int
    files_indexed: int
    """Distinct files the scratch index holds at the end."""
    files_committed: int
    """File versions committed (batch_log; a file read twice counts twice)."""
    seconds: float
    """From the first batch's start to the last commit, before the closing scan."""
    files_per_s: float
    """files_indexed over seconds."""
    batch_p50_ms: float | None
    batch_p95_ms: float | None
    event_p50_ms: float | None
    event_p95_ms: float | None
    errors: int
    """Files left in error at the end."""
    catches: int
    """Files a closing full scan found that the watch events had not brought."""
    cpu_s: float
    """See CPU_CLOCK."""
    caught_up: bool
    writer_files_per_s: float


@dataclass(frozen=True)
class TrialResult:
    workload: Workload
    v1: IndexerTrial
    v2: IndexerTrial
    cpu_clock: str = CPU_CLOCK

    @property
    def ratio(self) -> float | None:
        """v2's files/s over v1's; None when v1 committed nothing."""
        return self.v2.files_per_s / self.v1.files_per_s if self.v1.files_per_s > 0 else None


@dataclass(frozen=True)
class TrialProgress:
    stage: str
    """'generating', 'v1' or 'v2'."""
    committed: int
    total: int

    @property
    def fraction(self) -> float:
        """The whole trial's progress, 0 to 1: generating counts for nothing, each run for half."""
        if self.stage not in VERSIONS:
            return 0.0
        done = min(1.0, self.committed / self.total) if self.total else 1.0
        return (VERSIONS.index(self.stage) + done) / len(VERSIONS)


class TrialCancelled(Exception):
    """cancel() was called; the scratch data is gone."""


class TrialFailed(RuntimeError):
    """A trial process ended without its result; the message is the tail of its log."""


class Trial:
    """One trial of `workload`; `run` once from a worker thread, `cancel` from any thread."""

    def __init__(
        self, workload: Workload, base: Path | None = None, catch_up_s: float | None = None
    ) -> None:
        self.workload = workload
        self.base = default_bench_dir().parent if base is None else base
        """Scratch folders go here: tmpfs when there is one, so the disk is not what is measured."""
        self.catch_up_s = (
            CATCH_UP_S + workload.files / CATCH_UP_FILES_PER_S if catch_up_s is None else catch_up_s
        )
        self.scratch: Path | None = None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[str]] = []

    def pids(self) -> tuple[int, ...]:
        """The trial's processes still running or not yet waited for."""
        with self._lock:
            return tuple(proc.pid for proc in self._procs)

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            proc.kill()

    def run(self, on_progress: Callable[[TrialProgress], object] = lambda _p: None) -> TrialResult:
        self._check()
        self.base.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="ocindex-trial-", dir=self.base))
        try:
            on_progress(TrialProgress("generating", 0, self.workload.files))
            source = self.scratch / "source" / "storage"
            # About 120 files a session: enough sessions that the first `files` exist.
            sessions = self.workload.files // 100 + 5
            OpenCodeSimulator(source, seed=self.workload.seed).write_sessions(sessions)
            self._check()
            runs = {v: self._run_one(v, source, on_progress) for v in VERSIONS}
            return TrialResult(self.workload, runs["v1"], runs["v2"])
        except Exception:
            # A process killed by cancel() ends without its result, or mid-line: once cancelled,
            # whatever that broke is the cancel.
            self._check()
            raise
        finally:
            try:
                self._end_all()
            finally:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise TrialCancelled("trial cancelled")

    def _spawn(self, args: list[str], log: IO[str]) -> subprocess.Popen[str]:
        with self._lock:
            self._check()
            proc = subprocess.Popen(
                [sys.executable, "-m", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            self._procs.append(proc)
        return proc

    def _end_all(self) -> None:
        with self._lock:
            procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    # A line _send could not deliver to a killed process is still buffered:
                    # closing flushes it and raises BrokenPipeError (the pipe closes anyway).
                    with contextlib.suppress(OSError):
                        pipe.close()

    def _run_one(
        self, version: str, source: Path, on_progress: Callable[[TrialProgress], object]
    ) -> IndexerTrial:
        assert self.scratch is not None
        self._check()
        work = self.scratch / version
        root = work / "storage"
        root.mkdir(parents=True)
        w = self.workload
        with (work / "trial.log").open("w") as log:
            indexer = self._spawn(
                [
                    *("indexer.trial", version, str(root), str(work / "index.duckdb")),
                    *("--catch-up", str(self.catch_up_s)),
                ],
                log,
            )
            _expect(indexer, "ready", work)
            writer = self._spawn(
                [
                    *("indexer.simulate.replay", str(source), str(root)),
                    *("--rate", str(w.rate), "--limit", str(w.files)),
                ],
                log,
            )
            _expect(writer, "ready", work)
            _send(indexer, "go")
            _send(writer, "go")
            written: dict[str, Any] = {}
            waiter = threading.Thread(
                target=_await_writer, args=(writer, indexer, written), daemon=True
            )
            waiter.start()
            result: dict[str, Any] | None = None
            while result is None:
                message = _read(indexer, work)
                if "committed" in message:
                    on_progress(TrialProgress(version, int(message["committed"]), w.files))
                result = message.get("result")
            waiter.join()
        self._check()
        files = int(written.get("files", 0))
        seconds = float(written.get("seconds", 0.0))
        return IndexerTrial(
            files_written=files,
            writer_files_per_s=round(files / seconds, 1) if seconds > 0 else 0.0,
            **result,
        )


def _send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
    except (BrokenPipeError, ValueError):
        pass  # it ended (killed on cancel): its missing output says so


def _failed(proc: subprocess.Popen[str], work: Path, what: str) -> TrialFailed:
    """The process ended (or is ended) without what it owed: the failure, with its log's tail."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    log = work / "trial.log"
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
    text = f"{work.name} trial: {what} (exit {proc.returncode})"
    return TrialFailed(f"{text}: {' '.join(tail)}" if tail else text)


def _read(proc: subprocess.Popen[str], work: Path) -> dict[str, Any]:
    """The process's next JSON line; its end without one is a TrialFailed (or cancelled)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise _failed(proc, work, "the indexer process ended without its result")
    found = json.loads(line)
    return found if isinstance(found, dict) else {"line": found}


def _expect(proc: subprocess.Popen[str], word: str, work: Path) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != word:
        raise _failed(proc, work, f"expected {word!r} from a trial process, got {line!r}")


def _await_writer(
    writer: subprocess.Popen[str], indexer: subprocess.Popen[str], out: dict[str, Any]
) -> None:
    """Tells the indexer process how many files the writer wrote once it has."""
    assert writer.stdout is not None
    line = writer.stdout.readline()
    if line:
        out.update(json.loads(line))
    _send(indexer, f"written {int(out.get('files', 0))}")


# ---- the indexer process ---------------------------------------------------------------------


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One indexer of an A/B trial (see module doc).")
    parser.add_argument("version", choices=VERSIONS)
    parser.add_argument("root", type=Path)
    parser.add_argument("db", type=Path)
    parser.add_argument("--catch-up", type=float, default=CATCH_UP_S, help="seconds")
    args = parser.parse_args(argv)
    # The scratch tree alone: no OpenCode store that $OPENCODE_DB might name.
    env = {k: v for k, v in process_env().items() if k != ENV_OPENCODE_DB}
    config = IndexerConfig.load(Flags(storage=args.root, db=args.db, indexer=args.version), env)
    engine = assemble(config, watch=True, bulk=False)
    indexer = engine.indexer
    indexer.start()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1  # the parent went away
    cpu0 = _cpu_s()
    written: list[int] = []
    told = threading.Event()

    def await_written() -> None:
        words = sys.stdin.readline().split()  # "written N", or nothing if the parent went away
        written.append(int(words[1]) if len(words) == 2 and words[1].isdigit() else 0)
        told.set()

    threading.Thread(target=await_written, daemon=True).start()
    while not told.wait(0.2):
        _emit(committed=indexer.stats().files_processed)
    told_at = time.monotonic()
    deadline = told_at + args.catch_up
    caught_up = False
    while not caught_up and time.monotonic() < deadline:
        idle = indexer.wait_idle(timeout_s=0.2, settle_s=SETTLE_S)
        _emit(committed=indexer.stats().files_processed)
        # Every written file in the index; or quiet so long after the writing that what is
        # missing was missed (an indexer with no batch yet counts as quiet from the start, and
        # v1's debounce still holds the first events then).
        quiet = indexer.is_idle(QUIET_S) and time.monotonic() - told_at >= QUIET_S
        caught_up = idle and (_indexed(indexer) >= written[0] or quiet)
    cpu_s = _cpu_s() - cpu0
    figures = _figures(indexer.cursor(), args.version)
    report = indexer.rescan() if caught_up else None
    indexer.wait_idle(timeout_s=10.0, settle_s=SETTLE_S)
    cursor = indexer.cursor()
    row = cursor.execute("SELECT count(*) FROM file_index WHERE status = 'error'").fetchone()
    cursor.close()
    indexer.stop(flush=caught_up, close=False)
    engine.writer.close()
    result = dict(
        figures,
        version=args.version,
        errors=int(row[0]) if row else 0,
        catches=report.findings if report is not None else 0,
        cpu_s=round(cpu_s, 3),
        caught_up=caught_up,
    )
    _emit(result=result)
    return 0


def _indexed(indexer: Indexer) -> int:
    cursor = indexer.cursor()
    try:
        row = cursor.execute("SELECT count(*) FROM file_index").fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row else 0


def _figures(cursor: Any, version: str) -> dict[str, Any]:
    """files/s over the span of the indexer's own batches, and its percentiles."""
    try:
        row = cursor.execute(
            "SELECT coalesce(sum(files), 0), epoch(max(committed_at)) - epoch(min(started_at)), "
            "(SELECT count(*) FROM file_index) FROM batch_log WHERE indexer_version = ?",
            [version],
        ).fetchone()
        batch = [
            float(r[0])
            for r in cursor.execute(
                "SELECT processing_ms FROM batch_log WHERE indexer_version = ?", [version]
            ).fetchall()
        ]
        events = [
            float(r[0])
            for r in cursor.execute(
                "SELECT unnest(event_latency_ms) FROM batch_log WHERE indexer_version = ?",
                [version],
            ).fetchall()
        ]
    finally:
        cursor.close()
    versions, indexed = (int(row[0]), int(row[2])) if row else (0, 0)
    seconds = float(row[1]) if row and row[1] else 0.0
    return {
        "files_indexed": indexed,
        "files_committed": versions,
        "seconds": round(seconds, 3),
        "files_per_s": round(indexed / seconds, 1) if seconds > 0 else 0.0,
        "batch_p50_ms": percentile(batch, 0.5),
        "batch_p95_ms": percentile(batch, 0.95),
        "event_p50_ms": percentile(events, 0.5),
        "event_p95_ms": percentile(events, 0.95),
    }


def as_json(result: TrialResult) -> dict[str, Any]:
    """The result as plain JSON values (for logs and `--json` style output)."""
    return dict(asdict(result), ratio=result.ratio)


if __name__ == "__main__":
    sys.exit(main())
