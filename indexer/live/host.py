"""What the live endpoint asks of a running IndexerService: a cursor, the status report with the
engine's live figures, the rollback, and the dashboard's facade for an attached dashboard. Never
touches the writer's connection or the indexer's threads: it goes through the public methods.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb

from indexer.config import IndexerConfig
from indexer.health import Health, health_notice, health_of
from indexer.live.address import (
    ACTION_COMPARE,
    ACTION_FLUSH,
    ACTION_HEALTH,
    ACTION_RESCAN,
    ACTION_RETRY,
    ACTION_ROLLOUT,
    ACTION_SNAPSHOT,
    ACTION_SWITCH,
    ACTION_THRESHOLD,
)
from indexer.pipeline.writer import WriterFailed
from indexer.rollout import Indexer, RolloutState, choose
from indexer.snapshot import ActionResult, Comparison, IndexerSnapshot
from indexer.sources.base import ChangeSource
from indexer.sources.sqlite import discover_databases
from indexer.status import status_report


class Engine(Protocol):
    """The dashboard's facade of a running engine, as an attached dashboard drives it
    (indexer.service.IndexerService; indexer.live.remote.RemoteService on the other side)."""

    def snapshot(self) -> IndexerSnapshot: ...
    def compare(self, window_s: float = ...) -> Comparison: ...
    def flush(self) -> ActionResult: ...
    def rescan(self) -> ActionResult: ...
    def retry(self, rel_path: str) -> ActionResult: ...
    def switch_to(self, version: str, reason: str = ...) -> ActionResult: ...
    def set_rollout(self, percent: int) -> ActionResult: ...
    def rollout_threshold(self) -> int | None: ...
    def health(self) -> Health: ...


def engine_call(engine: Engine, action: str, request: dict[str, Any]) -> object:
    """What the engine answers to one of address.ENGINE_ACTIONS: a frozen value, an int or None.
    A request field of the wrong type raises ValueError or TypeError."""
    if action == ACTION_SNAPSHOT:
        return engine.snapshot()
    if action == ACTION_COMPARE:
        return engine.compare(float(request.get("window_s", 300.0)))
    if action == ACTION_FLUSH:
        return engine.flush()
    if action == ACTION_RESCAN:
        return engine.rescan()
    if action == ACTION_RETRY:
        return engine.retry(_text(request, "rel_path"))
    if action == ACTION_SWITCH:
        return engine.switch_to(_text(request, "version"), str(request.get("reason", "")))
    if action == ACTION_ROLLOUT:
        return engine.set_rollout(int(request["percent"]))
    if action == ACTION_THRESHOLD:
        return engine.rollout_threshold()
    if action == ACTION_HEALTH:
        return engine.health()
    raise ValueError(f"unknown action {action!r}")


def _text(request: dict[str, Any], name: str) -> str:
    value = request[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


class Service(Engine, Protocol):
    """What ServiceHost reads of indexer.service.IndexerService."""

    config: IndexerConfig
    root: Path
    db_path: Path
    sources: Sequence[ChangeSource]
    current: Indexer | None

    @property
    def active(self) -> str: ...

    def cursor(self) -> duckdb.DuckDBPyConnection: ...

    def rollback(self, reason: str = ...) -> ActionResult: ...


class ServiceHost:
    """indexer.live.server.Host over one IndexerService."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._service.cursor()

    def live_status(self, window_s: float) -> dict[str, object]:
        """`ocindex status --json`'s report (as the status command computes it for this
        database and the root this process indexes), its text lines, and `live` figures."""
        service = self._service
        paths = service.config.paths
        choice = choose(None, RolloutState(service.db_path, writable=False), service.config.rollout)
        databases = discover_databases(service.root, paths.opencode_db, paths.opencode_env)
        live = self.live_figures()
        try:
            cursor = service.cursor()
        except (WriterFailed, duckdb.Error) as exc:
            # Between reopen attempts the index cannot be read: the live figures say why.
            return {"report": {"live": live, "error": str(exc)}, "lines": live_lines(live)}
        try:
            report = status_report(
                cursor, service.db_path, choice, window_s, databases, service.root
            )
        finally:
            cursor.close()
        return {
            "report": {**report.as_json(), "live": live},
            "lines": [*report.lines(), *live_lines(live)],
        }

    def live_figures(self) -> dict[str, object]:
        """The running engine's own figures: queue, batches, lag, sources."""
        service = self._service
        current = service.current
        if current is None:
            return {"pid": os.getpid(), "running": False}
        stats = current.stats()
        health = health_of(stats)
        batches = current.recent_batches(200)
        now = time.time()
        processing = sorted(b.processing_ms for b in batches)
        return {
            "pid": os.getpid(),
            "running": stats.running,
            "active": current.version,
            "storage_root": str(service.root),
            "pending_files": stats.pending_files,
            "oldest_pending_age_s": _round(stats.oldest_pending_age_s),
            "queue_depth": stats.queue_depth,
            "delayed_files": stats.delayed_files,
            "batches": stats.batches,
            "files_processed": stats.files_processed,
            "db_errors": stats.db_errors,
            "fatal": stats.fatal,
            "condition": health.condition,
            "unwatched_folders": health.unwatched_folders,
            "refused_watches": health.refused_watches,
            "batch_p95_ms": _round(_p95(processing)),
            "last_commit_age_s": _round(now - batches[0].committed_at if batches else None),
            "sources": [dict(s.describe()) for s in service.sources],
            "notice": health_notice(health),
        }

    def live_rollback(self, reason: str) -> dict[str, object]:
        result = self._service.rollback(reason)
        return {
            "action": result.action,
            "ok": result.ok,
            "message": result.message,
            "active": self._service.active,
        }

    def engine_call(self, action: str, request: dict[str, Any]) -> object:
        return engine_call(self._service, action, request)


def live_lines(live: dict[str, object]) -> list[str]:
    if not live.get("running"):
        return [f"live            process {live['pid']}: not running"]
    lines = [
        f"live            process {live['pid']} runs {live['active']} on {live['storage_root']}",
        f"live            {live['pending_files']} pending (oldest "
        f"{_shown(live['oldest_pending_age_s'], 's')}), queue {live['queue_depth']}, "
        f"{live['batches']} batches, batch p95 {_shown(live['batch_p95_ms'], ' ms')}, "
        f"last commit {_shown(live['last_commit_age_s'], 's ago')}",
    ]
    if live.get("notice"):
        lines.append(f"live            {live['notice']}")
    return lines


def _shown(value: object, unit: str) -> str:
    return "-" if value is None else f"{value}{unit}"


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(0.95 * len(values)))]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
