"""IndexerService: the engine the dashboard and `ocindex run` drive. It owns the database
connection, the active indexer, the live v1⇄v2 switch and rollback, and the demo simulator.
Never exposes connections or threads: callers get frozen snapshots and ActionResults.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from indexer.config import Flags, IndexerConfig, Tunables, process_env
from indexer.engine import Engine, assemble
from indexer.facade import IndexerStats
from indexer.health import Health, health_notice, health_of
from indexer.kinds import classify
from indexer.live.host import ServiceHost
from indexer.live.server import LiveServer, serve
from indexer.metrics import (
    AlertThresholds,
    PrometheusExporter,
    check_alert,
    compare,
    version_metrics,
)
from indexer.outcome import BatchResult
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.writer import IndexWriter, WriterFailed
from indexer.read_model import file_status_counts
from indexer.rollout import Choice, Indexer, RolloutState, bucket_of, choose
from indexer.snapshot import ActionResult, Alert, Comparison, IndexerSnapshot
from indexer.sources.base import ChangeSource
from indexer.sources.sqlite import ENV_DB
from indexer.status import V1_NOTE
from indexer.store.logs import append_switch

if TYPE_CHECKING:
    from indexer.simulate.demo import DemoWriter

log = logging.getLogger(__name__)

THROUGHPUT_WINDOW_S = 60


def service_config(flags: Flags, env: Mapping[str, str] | None = None) -> IndexerConfig:
    """The engine's configuration: env (default: the process's) gives the paths, the rollout,
    OpenCode's store and the alert thresholds. The v2 tunables are always the process's, so a
    caller handing in a clean env still tunes the pipeline through the real one."""
    config = IndexerConfig.load(flags, env)
    if env is None:
        return config
    return replace(config, tunables=Tunables.from_env(process_env()))


class IndexerService:
    """Every public method is safe from any thread; actions are serialised by one lock.

    Built from a root, a database and env (see service_config), or from a configuration the
    caller loaded (from_config; root and db_path are then the configuration's).
    """

    def __init__(
        self,
        root: Path,
        db_path: Path,
        *,
        cli_choice: str | None = None,
        env: Mapping[str, str] | None = None,
        watch: bool = True,
        demo: bool = False,
        thresholds: AlertThresholds | None = None,
        exporter: PrometheusExporter | None = None,
        config: IndexerConfig | None = None,
    ) -> None:
        if config is None:
            config = service_config(Flags(storage=root, db=db_path, indexer=cli_choice), env)
        self.config = config
        self.root = config.paths.storage_root
        self.db_path = config.paths.db_path
        self.demo = demo
        self._watch = watch
        alerts = config.alerts
        self.thresholds = thresholds or AlertThresholds(
            error_rate=alerts.error_rate, p95_ms=alerts.p95_ms, min_files=alerts.min_files
        )
        self.exporter = exporter
        self.state = RolloutState(self.db_path)
        self.choice: Choice | None = None
        self.sources: Sequence[ChangeSource] = ()
        self._engine: Engine | None = None
        self._writer: IndexWriter | None = None
        self.current: Indexer | None = None
        self._interrupted = False
        self._action_lock = threading.RLock()
        self._read_lock = threading.Lock()  # readers vs the close in stop()
        self._commits: deque[tuple[float, int]] = deque(maxlen=20_000)
        self._commits_lock = threading.Lock()
        self._cleanup: list[Path] = []
        self._demo: DemoWriter | None = None
        self._live: LiveServer | None = None
        self.message = ""
        self._totals: dict[str, int] = {}

    @classmethod
    def from_config(
        cls,
        config: IndexerConfig,
        *,
        watch: bool = True,
        exporter: PrometheusExporter | None = None,
    ) -> IndexerService:
        paths = config.paths
        return cls(paths.storage_root, paths.db_path, watch=watch, exporter=exporter, config=config)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        engine = assemble(self.config, state=self.state, watch=self._watch, on_batch=self._on_batch)
        self._engine, self._writer = engine, engine.writer
        self.sources = engine.sources
        for source in self.sources:
            about = source.describe()
            there = "" if Path(str(about["path"])).exists() else ", not there yet"
            log.info(
                "source %s %s (keys %s…%s)", about["kind"], about["path"], source.prefix, there
            )
        self.choice = engine.choice
        log.info("starting %s (%s)", self.choice.version, self.choice.reason)
        self.current = engine.indexer
        if self._interrupted:  # asked before there was an indexer to ask
            self.current.interrupt()
        self.current.start()
        self.state.save(active_version=self.choice.version)
        if self.exporter is not None:
            self.exporter.track_health(self.health)
        # Queries, status and rollback from other processes, while this one holds the file.
        self._live = serve(ServiceHost(self), self.db_path)

    def interrupt(self) -> None:
        """Have a start() in progress end soon, leaving its catch-up to the next start (a stop
        asked for during a long catch-up); then stop(). Sets flags only: a signal handler may
        call it."""
        self._interrupted = True
        current = self.current
        if current is not None:
            current.interrupt()

    def stop(self) -> None:
        """Stop the live endpoint (its calls finish first: a rollback takes the action lock),
        the demo writer, then the indexer with everything pending flushed; close."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()
        with self._action_lock:
            if self._demo is not None:
                self._demo.stop(timeout_s=10)
            try:
                if self.current is not None:
                    self.current.stop(flush=True, close=False)
                    self.current = None
            finally:
                # A snapshot still reading (the dashboard's poller) finishes before the close.
                with self._read_lock:
                    writer, self._writer, self._engine = self._writer, None, None
                    if writer is not None:
                        writer.close()
                if self.exporter is not None:
                    self.exporter.close()
                for path in self._cleanup:
                    shutil.rmtree(path, ignore_errors=True)

    def _on_batch(self, result: BatchResult) -> None:
        with self._commits_lock:
            self._commits.append((result.committed_at, result.files))
        if self.exporter is not None:
            self.exporter.observe(result)

    def start_demo_writer(self, writer: DemoWriter) -> None:
        """Start writing simulated OpenCode activity into the root; stop() stops it first."""
        self._demo = writer
        writer.start()

    # --- reads --------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._writer is not None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the index for the calling thread's reads; the caller closes it."""
        if self._writer is None:
            raise RuntimeError("the service is not running")
        return self._writer.cursor()

    def indexer_stats(self) -> IndexerStats | None:
        """The current indexer's stats (while it starts too); None before there is one."""
        return None if (current := self.current) is None else current.stats()

    def health(self) -> Health:
        """The writer's condition and the unwatched folders, now."""
        current = self.current
        return health_of(current.stats()) if current is not None else Health()

    @property
    def active(self) -> str:
        return self.current.version if self.current is not None else "-"

    def snapshot(self) -> IndexerSnapshot:
        with self._read_lock:
            return self._snapshot()

    def _snapshot(self) -> IndexerSnapshot:
        cur = self.current
        writer = self._writer
        if cur is None or writer is None:
            raise RuntimeError("the service is not running")
        now = time.time()
        stats = cur.stats()
        alert: Alert | None = None
        try:
            cursor = writer.cursor()
            try:
                self._totals = file_status_counts(cursor)
                active = version_metrics(cursor, cur.version, self.thresholds.window_s, now)
            finally:
                cursor.close()
            errors = tuple(cur.error_files(100))
            alert = check_alert(active, self.thresholds)
        except (WriterFailed, duckdb.Error):
            # Between reopen attempts the database cannot be read: the header says why, with
            # the totals last read.
            stats = cur.stats()
            if health_of(stats).writer_ok:
                raise
            errors = ()
        notice = health_notice(health_of(stats))
        reconciles = tuple(cur.reconciler_findings(10))
        rollout = self.choice.rollout_percent if self.choice else 0
        return IndexerSnapshot(
            taken_at=now,
            active=cur.version,
            rollout_percent=rollout,
            running=stats.running,
            demo=self.demo,
            storage_root=str(self.root),
            files_per_s=self._rate(now, 5.0),
            totals=dict(self._totals),
            pending_count=stats.pending_files,
            oldest_pending_age_s=stats.oldest_pending_age_s,
            queue_depth=stats.queue_depth,
            pending=tuple(cur.pending_files(50)),
            recent_batches=tuple(cur.recent_batches(200)),
            throughput=self._throughput(now),
            reconciles=reconciles,
            errors=errors,
            alert=alert,
            message="; ".join(m for m in (notice, self.message) if m)
            or self._sources_line(cur.version),
        )

    def _sources_line(self, version: str) -> str:
        """One line on the second source, for the header; empty when there is none."""
        if not self.sources:
            return ""
        parts = []
        for source in self.sources:
            state = "not read by v1" if version == "v1" else str(source.describe()["state"])
            parts.append(f"{source.name} ({state})")
        return "sources: JSON files + " + ", ".join(parts)

    def compare(self, window_s: float = 300.0) -> Comparison:
        with self._read_lock:
            if self._writer is None:
                raise RuntimeError("the service is not running")
            cursor = self._writer.cursor()
            try:
                result = compare(cursor, window_s)
            finally:
                cursor.close()

        note = "v1 has no reconciler: its catches are always 0"
        if self.sources:
            note += f"; {V1_NOTE}: v1's figures leave its rows out"
        return replace(result, v1=replace(result.v1, note=note))

    def _rate(self, now: float, over_s: float) -> float:
        with self._commits_lock:
            files = sum(n for t, n in self._commits if t >= now - over_s)
        return files / over_s

    def _throughput(self, now: float) -> tuple[float, ...]:
        buckets = [0.0] * THROUGHPUT_WINDOW_S
        with self._commits_lock:
            for t, n in self._commits:
                age = int(now - t)
                if 0 <= age < THROUGHPUT_WINDOW_S:
                    buckets[THROUGHPUT_WINDOW_S - 1 - age] += n
        return tuple(buckets)

    # --- actions ----------------------------------------------------------------------------

    def flush(self) -> ActionResult:
        cur = self.current
        if cur is None:
            return ActionResult("flush", False, "not running")
        pending = cur.stats().pending_files
        cur.flush()
        return ActionResult("flush", True, f"flushed {pending} pending files")

    def rescan(self) -> ActionResult:
        with self._action_lock:
            cur = self.current
            if cur is None:
                return ActionResult("rescan", False, "not running")
            # v2 reconciles; v1 re-runs its bulk phase over what changed: each its own way.
            report = cur.rescan()
            if report is None:
                return ActionResult("rescan", True, "rescan found 0 files")
            text = f"rescan found {report.findings} files to index"
            catches = getattr(report, "catches", None)  # v1's bulk pass has no events to judge
            if isinstance(catches, int):
                text += f"; {catches or 'none'} of them missed by the events"
            return ActionResult("rescan", True, text)

    def retry(self, rel_path: str) -> ActionResult:
        key = classify(rel_path)
        if key is None or self.current is None:
            return ActionResult("retry", False, f"cannot retry {rel_path}")
        self.current.submit([key], Trigger.MANUAL)
        return ActionResult("retry", True, f"queued {rel_path} again")

    def switch_to(self, version: str, reason: str = "") -> ActionResult:
        """Stop the current indexer's intake, hand its pending files to the other one, start it
        on the same database, reconcile, and record the switch."""
        if version not in ("v1", "v2"):
            return ActionResult("switch", False, f"unknown indexer {version!r}")
        with self._action_lock:
            old, engine = self.current, self._engine
            if old is None or engine is None:
                return ActionResult("switch", False, "not running")
            if old.version == version:
                return ActionResult("switch", True, f"already on {version}")
            t0 = time.monotonic()
            leftover = old.stop(flush=False, close=False)
            why = reason or "manual"
            engine.writer.run(lambda conn: append_switch(conn, old.version, version, why))
            new = engine.build(version)
            new.start(handover=leftover)  # both catch up at start: v2 reconciles, v1 bulk-loads
            self.current = new
            self.state.save(active_version=version)
            ms = (time.monotonic() - t0) * 1000
            log.info(
                "switched %s -> %s in %.0f ms (%s), %d handed over",
                old.version,
                version,
                ms,
                reason or "manual",
                len(leftover),
            )
            return ActionResult(
                "switch",
                True,
                f"switched to {version} in {ms:.0f} ms, {len(leftover)} files handed over",
            )

    def rollback(self, reason: str = "rollback") -> ActionResult:
        """Set the rollout to 0 (persisted, so a restart stays on v1) and switch to v1 now."""
        with self._action_lock:
            self.state.save(rollout_percent=0, rolled_back_at=time.time(), rollback_reason=reason)
            if self.choice is not None:
                self.choice = Choice("v1", "rolled back", 0)
            result = self.switch_to("v1", reason)
            return ActionResult("rollback", result.ok, f"rolled back to v1: {result.message}")

    def rollout_threshold(self) -> int | None:
        """The lowest rollout percent at which set_rollout puts this install on v2 (its bucket
        + 1, as rollout.choose decides); None when UNIFIED_INDEXER_V2_ENABLED pins the indexer."""
        if self.config.rollout.enabled is not None:
            return None
        state = self.state
        install_id = state.install_id() if state.writable else state.saved_install_id()
        return 100 if install_id is None else bucket_of(install_id) + 1

    def set_rollout(self, percent: int) -> ActionResult:
        """Persist a new rollout and apply it now (the start-time --indexer no longer binds)."""
        percent = max(0, min(100, int(percent)))
        with self._action_lock:
            self.state.save(rollout_percent=percent)
            self.choice = choose(None, self.state, self.config.rollout)
            message = f"rollout {percent}%: {self.choice.reason}"
            if self.current is not None and self.current.version != self.choice.version:
                switched = self.switch_to(self.choice.version, f"rollout {percent}%")
                message += f"; {switched.message}"
            return ActionResult("rollout", True, message)


def open_service(
    *,
    storage_root: Path | None,
    db_path: Path | None,
    indexer: str | None,
    demo: bool,
    env: Mapping[str, str] | None = None,
    demo_rate_files_per_s: float = 60.0,
    opencode_db: Path | None = None,
    start: bool = True,
) -> IndexerService:
    """Build and start the engine (start=False: the caller starts it); in demo mode, started, on
    a temporary root removed at stop().

    opencode_db (--opencode-db) names OpenCode's SQLite store, else $OPENCODE_DB, else the
    opencode*.db beside the storage folder. The demo writes both: JSON files under the root,
    and OpenCode 1.2's opencode.db beside it.
    """
    env = process_env() if env is None else env
    if demo:
        from indexer.simulate.demo import DemoWriter

        # The writer's opencode.db exists before start(), which finds it beside the root.
        writer = DemoWriter.in_new_folder(demo_rate_files_per_s)
        demo_env = {k: v for k, v in env.items() if k != ENV_DB}
        service = IndexerService(
            writer.root,
            db_path or writer.folder / "index.duckdb",
            cli_choice=indexer or "v2",
            env=demo_env,
            demo=True,
        )
        service._cleanup.append(writer.folder)
        try:
            service.start()
        except BaseException:
            writer.stop()
            shutil.rmtree(writer.folder, ignore_errors=True)
            raise
        service.start_demo_writer(writer)
        return service
    flags = Flags(storage=storage_root, db=db_path, indexer=indexer, opencode_db=opencode_db)
    service = IndexerService.from_config(service_config(flags, env))
    if start:
        service.start()
    return service
