"""The engine's health in plain words: the index writer's condition and the folders the watcher
could not watch, for the dashboard header, `status --json` and the metrics. Never reads a database.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.facade import IndexerStats
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Stats

POLL_S = ReconcilerConfig().unwatched_poll_s
"""How often the reconciler polls the folders the watcher could not watch."""


@dataclass(frozen=True, slots=True)
class Health:
    condition: str | None = None
    """Why the index writer cannot write now (reopening the database, or stopped); None if it can."""
    stopped: bool = False
    """The writer gave up: the condition lasts until a restart."""
    unwatched_folders: int = 0
    refused_watches: int = 0
    """Watches the kernel refused since start (the inotify limit)."""

    @property
    def writer_ok(self) -> bool:
        return self.condition is None


def health_of(stats: IndexerStats) -> Health:
    condition = stats.condition if isinstance(stats, V2Stats) else None
    watcher = stats.watcher
    return Health(
        condition=stats.fatal or condition,
        stopped=stats.fatal is not None,
        unwatched_folders=len(watcher.unwatched) if watcher else 0,
        refused_watches=watcher.refused_watches if watcher else 0,
    )


def health_notice(health: Health) -> str:
    """One line for the dashboard header; empty while all is well."""
    parts = []
    if health.condition is not None:
        state = "stopped" if health.stopped else "paused"
        tail = "restart ocindex" if health.stopped else "retrying"
        parts.append(f"index writer {state}: {health.condition} — {tail}")
    if health.unwatched_folders:
        n = health.unwatched_folders
        folders = "folder" if n == 1 else "folders"
        parts.append(f"{n} {folders} not watched (inotify limit): polled every {POLL_S:g} s")
    return "; ".join(parts)
