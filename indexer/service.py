"""IndexerService: the engine the dashboard and `ocindex run` drive. It owns the database
connection, the active indexer, the live v1⇄v2 switch and rollback, and the demo simulator.
Never exposes connections or threads: callers get frozen snapshots and ActionResults.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from indexer.config import default_db_path
from indexer.kinds import classify
from indexer.metrics import (
    AlertThresholds,
    PrometheusExporter,
    check_alert,
    compare,
    version_metrics,
)
from indexer.outcome import BatchResult
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.writer import IndexWriter
from indexer.read_model import file_status_counts
from indexer.rollout import Choice, Indexer, RolloutState, choose_version, make_indexer
from indexer.snapshot import ActionResult, Comparison, IndexerSnapshot
from indexer.sources.sqlite import ENV_DB, discover_databases, make_sources
from indexer.status import V1_NOTE
from indexer.storage import resolve_storage_root
from indexer.store.logs import append_switch
from indexer.store.schema import set_meta

if TYPE_CHECKING:
    from indexer.simulate.demo import DemoWriter

log = logging.getLogger(__name__)

THROUGHPUT_WINDOW_S = 60


class IndexerService:
    """Every public method is safe from any thread; actions are serialised by one lock."""

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
    ) -> None:
        self.root = root
        self.db_path = db_path
        self.demo = demo
        self._cli_choice = cli_choice
        self._env = env
        self._watch = watch
        self.thresholds = thresholds or AlertThresholds.from_env(env)
        self.exporter = exporter
        self.state = RolloutState(db_path)
        self.choice: Choice | None = None
        self._writer: IndexWriter | None = None
        self.current: Indexer | None = None
        self._action_lock = threading.RLock()
        self._read_lock = threading.Lock()  # readers vs the close in stop()
        self._commits: deque[tuple[float, int]] = deque(maxlen=20_000)
        self._commits_lock = threading.Lock()
        self._cleanup: list[Path] = []
        self._demo: DemoWriter | None = None
        self.message = ""

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = writer = IndexWriter.open(self.db_path)
        writer.run(partial(set_meta, key="storage_root", value=str(self.root)))
        # OpenCode >= 1.2's SQLite store(s): $OPENCODE_DB or opencode*.db beside the storage
        # folder. Only v2 reads them (make_indexer drops them for v1).
        databases = discover_databases(self.root, None, self._env)
        self.sources = make_sources(databases, self.root, index=writer.cursor)
        for source in self.sources:
            there = "" if source.db_path.exists() else ", not there yet"
            log.info("OpenCode SQLite store %s (keys %s…%s)", source.db_path, source.prefix, there)
        self.choice = choose_version(self._cli_choice, self.state, self._env)
        log.info("starting %s (%s)", self.choice.version, self.choice.reason)
        self.current = self._build(self.choice.version)
        self.current.start()
        self.state.save(active_version=self.choice.version)

    def stop(self) -> None:
        """Stop the demo writer, then the indexer with everything pending flushed; close."""
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
                    writer, self._writer = self._writer, None
                    if writer is not None:
                        writer.close()
                if self.exporter is not None:
                    self.exporter.close()
                for path in self._cleanup:
                    shutil.rmtree(path, ignore_errors=True)

    def _build(self, version: str) -> Indexer:
        return make_indexer(
            version,
            self.root,
            writer=self._writer,
            watch=self._watch,
            on_batch=self._on_batch,
            sources=getattr(self, "sources", ()),
        )

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
        cursor = writer.cursor()
        try:
            totals = file_status_counts(cursor)
            active = version_metrics(cursor, cur.version, self.thresholds.window_s, now)
        finally:
            cursor.close()
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
            totals=totals,
            pending_count=stats.pending_files,
            oldest_pending_age_s=stats.oldest_pending_age_s,
            queue_depth=stats.queue_depth,
            pending=tuple(cur.pending_files(50)),
            recent_batches=tuple(cur.recent_batches(200)),
            throughput=self._throughput(now),
            reconciles=reconciles,
            errors=tuple(cur.error_files(100)),
            alert=check_alert(active, self.thresholds),
            message=self.message or self._sources_line(cur.version),
        )

    def _sources_line(self, version: str) -> str:
        """One line on the second source, for the header; empty when there is none."""
        if not self.sources:
            return ""
        parts = []
        for source in self.sources:
            state = "not read by v1" if version == "v1" else str(source.state)
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
        if getattr(self, "sources", ()):
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
            found = report.findings if report is not None else 0
            return ActionResult("rescan", True, f"rescan found {found} files")

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
            old = self.current
            if old is None or self._writer is None:
                return ActionResult("switch", False, "not running")
            if old.version == version:
                return ActionResult("switch", True, f"already on {version}")
            t0 = time.monotonic()
            leftover = old.stop(flush=False, close=False)
            why = reason or "manual"
            self._writer.run(lambda conn: append_switch(conn, old.version, version, why))
            new = self._build(version)
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

    def set_rollout(self, percent: int) -> ActionResult:
        """Persist a new rollout and apply it now (the start-time --indexer no longer binds)."""
        percent = max(0, min(100, int(percent)))
        with self._action_lock:
            self.state.save(rollout_percent=percent)
            self.choice = choose_version(None, self.state, self._env)
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
) -> IndexerService:
    """Build and start the engine; in demo mode, on a temporary root removed at stop().

    opencode_db (--opencode-db) names OpenCode's SQLite store, else $OPENCODE_DB, else the
    opencode*.db beside the storage folder. The demo writes both: JSON files under the root,
    and OpenCode 1.2's opencode.db beside it.
    """
    if opencode_db is not None:
        env = {**(os.environ if env is None else env), ENV_DB: str(opencode_db)}
    if demo:
        from indexer.simulate.demo import DemoWriter

        # The writer's opencode.db exists before start(), which finds it beside the root.
        writer = DemoWriter.in_new_folder(demo_rate_files_per_s)
        demo_env = {k: v for k, v in (os.environ if env is None else env).items() if k != ENV_DB}
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
    root, _ = resolve_storage_root(storage_root, env)
    service = IndexerService(root, db_path or default_db_path(env), cli_choice=indexer, env=env)
    service.start()
    return service
