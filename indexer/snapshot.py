"""The frozen values the dashboard and the CLI read, and the facade protocol that returns them.
Never holds a connection or a thread: these values cross threads as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from indexer.kinds import FileKey


@dataclass(frozen=True, slots=True)
class PendingFile:
    rel_path: str
    kind: str
    age_s: float
    """Seconds since the file first joined the open batch."""
    trigger: str


class _Waiting(Protocol):
    @property
    def key(self) -> FileKey: ...
    @property
    def first_seen(self) -> float: ...
    @property
    def trigger(self) -> object: ...


def newest_pending(waiting: Iterable[_Waiting], now: float, limit: int) -> list[PendingFile]:
    """What waits, newest first, as the pending pane lists it (now: the monotonic clock)."""
    newest = sorted(waiting, key=lambda w: w.first_seen, reverse=True)[:limit]
    return [
        PendingFile(w.key.rel_path, str(w.key.kind), now - w.first_seen, str(w.trigger))
        for w in newest
    ]


@dataclass(frozen=True, slots=True)
class BatchSummary:
    batch_id: int
    indexer_version: str
    trigger: str
    committed_at: float
    """Epoch seconds."""
    files: int
    indexed: int
    errors: int
    pending: int
    deleted: int
    processing_ms: float
    queue_wait_ms: float
    event_p95_ms: float | None
    """p95 of event→commit latency of the batch's files; None when no file had an event time."""


@dataclass(frozen=True, slots=True)
class ReconcileSummary:
    scan_id: int
    started_at: float
    duration_ms: float
    files_seen: int
    new_files: int
    modified_files: int
    deleted_files: int
    retried_files: int
    found: tuple[str, ...] = ()
    """Relative paths the scan found (bounded for display; the counts are exact)."""
    catches: int = 0
    """Findings that an event should have brought and none did (see ReconcileReport.catches)."""


@dataclass(frozen=True, slots=True)
class ErrorFile:
    rel_path: str
    kind: str
    reason: str
    """The failure class, e.g. invalid_json."""
    message: str
    attempts: int
    status: str


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True, slots=True)
class VersionMetrics:
    """One indexer's figures over a time window, from batch_log and reconcile_log."""

    version: str
    window_s: float
    batches: int = 0
    files: int = 0
    files_per_s: float = 0.0
    processing_ms: Percentiles = field(default_factory=Percentiles)
    event_latency_ms: Percentiles = field(default_factory=Percentiles)
    errors: int = 0
    reconciler_catches: int = 0
    latency_samples_ms: tuple[float, ...] = ()
    """Recent per-batch processing latencies, for histograms."""
    note: str = ""
    """Caveats the A/B view must show, e.g. a source this version does not read."""


@dataclass(frozen=True, slots=True)
class Comparison:
    window_s: float
    v1: VersionMetrics
    v2: VersionMetrics

    @property
    def ratio(self) -> float | None:
        """v2 files/s over v1 files/s, when both indexed anything."""
        if self.v1.files_per_s <= 0 or self.v2.files_per_s <= 0:
            return None
        return self.v2.files_per_s / self.v1.files_per_s


@dataclass(frozen=True, slots=True)
class Alert:
    figure: str
    """What crossed its threshold, e.g. 'error rate' or 'p95 latency'."""
    value: float
    threshold: float
    message: str


@dataclass(frozen=True, slots=True)
class IndexerSnapshot:
    """Everything one dashboard frame shows, taken at one instant."""

    taken_at: float
    active: str
    """'v1' or 'v2'."""
    rollout_percent: int
    running: bool
    demo: bool
    storage_root: str
    files_per_s: float
    totals: dict[str, int]
    """file_index counts by status: indexed, error, pending, deleted, skipped."""
    pending_count: int
    oldest_pending_age_s: float | None
    queue_depth: int
    pending: tuple[PendingFile, ...]
    recent_batches: tuple[BatchSummary, ...]
    throughput: tuple[float, ...]
    """Files committed per second over the last minute, oldest first."""
    reconciles: tuple[ReconcileSummary, ...]
    errors: tuple[ErrorFile, ...]
    alert: Alert | None = None
    message: str = ""
    """A one-line notice from the engine, e.g. an unreadable source."""

    @property
    def last_reconcile(self) -> ReconcileSummary | None:
        return self.reconciles[0] if self.reconciles else None


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: str
    ok: bool
    message: str


class IndexerFacade(Protocol):
    """What the dashboard may ask of the engine. Every method is safe from any thread; actions
    may block for a while, so the dashboard calls them from a worker, never the UI thread."""

    def snapshot(self) -> IndexerSnapshot: ...
    def compare(self, window_s: float = 300.0) -> Comparison: ...
    def flush(self) -> ActionResult: ...
    def rescan(self) -> ActionResult: ...
    def switch_to(self, version: str, reason: str = "") -> ActionResult: ...
    def rollback(self, reason: str = "") -> ActionResult: ...
    def set_rollout(self, percent: int) -> ActionResult: ...
    def retry(self, rel_path: str) -> ActionResult: ...
    def stop(self) -> None: ...
