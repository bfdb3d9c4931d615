"""What a reconciler's scan found, as it reports it (ReconcileReport), and its running totals
(ReconcilerStats). Pure values: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.snapshot import ReconcileSummary

MAX_FOUND_KEPT = 200
"""A summary names at most this many of a scan's findings."""


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    scan_id: int
    started_at: float
    duration_ms: float
    files_seen: int
    new: tuple[str, ...]
    modified: tuple[str, ...]
    deleted: tuple[str, ...]
    retried: tuple[str, ...]
    catches: int
    """Findings the events should have brought: not pending, and older than the catch grace."""
    totals: tuple[int, int, int, int] | None = None
    """How many were new, modified, deleted and retried, when more than the paths kept."""

    @property
    def findings(self) -> int:
        new, modified, deleted, _ = self.counts
        return new + modified + deleted

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """How many files were new, modified, deleted and retried."""
        if self.totals is not None:
            return self.totals
        return len(self.new), len(self.modified), len(self.deleted), len(self.retried)

    def summary(self) -> ReconcileSummary:
        found = (*self.new, *self.modified, *self.deleted)[:MAX_FOUND_KEPT]
        scan = (self.scan_id, self.started_at, self.duration_ms, self.files_seen)
        return ReconcileSummary(*scan, *self.counts, found=found, catches=self.catches)


@dataclass(frozen=True, slots=True)
class ReconcilerStats:
    scans_completed: int = 0
    files_found_missing: int = 0
    """Findings summed over every scan: new, modified and deleted files."""
    catches: int = 0
    last_scan_duration_ms: float | None = None
    last_scan_at: float | None = None
    """Epoch seconds the last scan started; None before the first."""
