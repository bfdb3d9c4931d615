"""Collects change keys into batches: deduplicated, sealed by the window or the file cap, and
handed in order to the one writer. Never touches the filesystem or the database.

add() is safe from any thread. A single sealer thread owns the timing; batches leave through a
bounded queue, so when the writer falls behind keys coalesce in the pending set and add()
eventually waits: nothing is dropped and memory stays bounded.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from indexer.kinds import FileKey
from indexer.snapshot import PendingFile, newest_pending


class Trigger(enum.StrEnum):
    """Why a key was submitted."""

    STARTUP = "startup"
    WATCHER = "watcher"
    RECONCILER = "reconciler"
    RETRY = "retry"
    MANUAL = "manual"
    HANDOVER = "handover"


class SealReason(enum.StrEnum):
    """Why a batch was sealed."""

    WINDOW = "window"
    MAX_FILES = "max_files"
    FORCE = "force"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class AccumulatorConfig:
    window_ms: float = 200.0
    max_files: int = 100
    flush_on_stop: bool = True
    max_queued_batches: int = 4
    max_pending_files: int = 50_000
    """add() waits while this many distinct keys are pending (backpressure)."""
    max_files_under_backlog: int | None = None
    """Adaptive mode, off unless set: while batches wait in the queue, seal up to this many."""

    def __post_init__(self) -> None:
        if self.window_ms < 0 or self.max_files < 1 or self.max_queued_batches < 1:
            raise ValueError("window_ms >= 0, max_files >= 1 and max_queued_batches >= 1")


@dataclass(frozen=True, slots=True)
class PendingEntry:
    key: FileKey
    trigger: Trigger
    first_seen: float
    """Monotonic time the key joined the pending set: the window and ages count from it."""
    event_at: float
    """Wall-clock time of the earliest unprocessed event: event→commit latency counts from it."""


@dataclass(frozen=True, slots=True)
class Batch:
    seq: int
    reason: SealReason
    entries: tuple[PendingEntry, ...]
    sealed_at: float
    """Monotonic time of sealing: queue wait counts from it."""

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class AccumulatorStats:
    batches_sent: int
    files_sent: int
    pending_files: int
    oldest_pending_age_s: float | None
    queue_depth: int
    delayed_files: int
    coalesced: int


class FileBatchAccumulator:
    """Thread-safe pending set feeding one consumer through a bounded queue of batches."""

    def __init__(
        self,
        config: AccumulatorConfig | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or AccumulatorConfig()
        self._monotonic = monotonic
        self._wall = wall
        self._pending: dict[str, PendingEntry] = {}
        self._delayed: list[tuple[float, int, FileKey, Trigger]] = []
        self._tie = itertools.count()
        self._lock = threading.Condition()
        self._force = False
        self._stopping = False
        self._queue: queue.Queue[Batch] = queue.Queue(maxsize=self.config.max_queued_batches)
        self._seq = itertools.count(1)
        self._batches_sent = 0
        self._files_sent = 0
        self._coalesced = 0
        self._queued: Counter[str] = Counter()  # paths in sealed batches not yet taken
        self._thread = threading.Thread(target=self._seal_loop, name="ocindex-sealer", daemon=True)
        self._thread.start()

    # --- producers ----------------------------------------------------------------------

    def add(self, key: FileKey, trigger: Trigger = Trigger.WATCHER) -> None:
        self.add_many((key,), trigger)

    def add_many(self, keys: Iterable[FileKey], trigger: Trigger = Trigger.WATCHER) -> None:
        """Add keys to the open batch; a key already pending keeps its place and age."""
        with self._lock:
            for key in keys:
                while (
                    len(self._pending) >= self.config.max_pending_files
                    and key.rel_path not in self._pending
                    and not self._stopping
                ):
                    self._lock.wait(0.1)  # backpressure: the writer is behind
                self._put(key, trigger)
            self._lock.notify_all()

    def add_later(self, key: FileKey, delay_s: float, trigger: Trigger = Trigger.RETRY) -> None:
        """Add a key once delay_s has passed (retry backoff); an earlier add supersedes it."""
        with self._lock:
            due = self._monotonic() + delay_s
            heapq.heappush(self._delayed, (due, next(self._tie), key, trigger))
            self._lock.notify_all()

    def _put(self, key: FileKey, trigger: Trigger) -> None:
        old = self._pending.get(key.rel_path)
        if old is not None:
            self._coalesced += 1
            self._pending[key.rel_path] = PendingEntry(key, trigger, old.first_seen, old.event_at)
        else:
            self._pending[key.rel_path] = PendingEntry(
                key, trigger, self._monotonic(), self._wall()
            )

    def force_flush(self) -> None:
        """Seal everything pending now, in batches of at most max_files; due retries included."""
        with self._lock:
            self._force = True
            self._lock.notify_all()

    # --- consumer -----------------------------------------------------------------------

    def get_batch(self, timeout_s: float | None = None) -> Batch | None:
        """Return the next sealed batch in order, or None when none came within timeout_s."""
        try:
            batch = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        with self._lock:
            for entry in batch.entries:
                self._queued[entry.key.rel_path] -= 1
                if not self._queued[entry.key.rel_path]:
                    del self._queued[entry.key.rel_path]
        return batch

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop sealing; with flush_on_stop, everything pending (retries too) is sealed first.

        The consumer must keep draining get_batch() meanwhile, or this waits for queue room.
        """
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout_s)

    def is_sealing(self) -> bool:
        """False once stop() has sealed everything and the sealer thread has ended."""
        return self._thread.is_alive()

    def drain_pending(self) -> list[PendingEntry]:
        """Take everything not yet sealed, delayed retries included (for a handover)."""
        with self._lock:
            taken = list(self._pending.values())
            seen = set(self._pending)
            self._pending.clear()
            for _, _, key, trigger in sorted(self._delayed):
                if key.rel_path not in seen:
                    seen.add(key.rel_path)
                    now = self._monotonic()
                    taken.append(PendingEntry(key, trigger, now, self._wall()))
            self._delayed.clear()
            self._lock.notify_all()
            return taken

    # --- reads for the dashboard ------------------------------------------------------------

    def get_stats(self) -> AccumulatorStats:
        with self._lock:
            oldest = min((e.first_seen for e in self._pending.values()), default=None)
            return AccumulatorStats(
                batches_sent=self._batches_sent,
                files_sent=self._files_sent,
                pending_files=len(self._pending),
                oldest_pending_age_s=None if oldest is None else self._monotonic() - oldest,
                queue_depth=self._queue.qsize(),
                delayed_files=len(self._delayed),
                coalesced=self._coalesced,
            )

    def pending_files(self, limit: int = 100) -> list[PendingFile]:
        """Return what waits in the open batch, newest first."""
        with self._lock:
            return newest_pending(self._pending.values(), self._monotonic(), limit)

    def pending_paths(self) -> set[str]:
        """Return every path waiting in the open batch, in a sealed batch, or for a retry."""
        with self._lock:
            delayed = {key.rel_path for _, _, key, _ in self._delayed}
            return set(self._pending) | set(self._queued) | delayed

    # --- the sealer thread -----------------------------------------------------------------

    def _seal_loop(self) -> None:
        window_s = self.config.window_ms / 1000.0
        while True:
            with self._lock:
                batch = self._next_batch(window_s)
                while batch is None:
                    if self._stopping and not (self._pending and self.config.flush_on_stop):
                        return  # without flush_on_stop, drain_pending() hands the rest over
                    self._lock.wait(self._wait_s(window_s))
                    batch = self._next_batch(window_s)
            with self._lock:
                self._queued.update(e.key.rel_path for e in batch.entries)
            # Outside the lock: a full queue blocks only the sealer; add() keeps coalescing.
            self._queue.put(batch)
            with self._lock:
                self._batches_sent += 1
                self._files_sent += len(batch)

    def _next_batch(self, window_s: float) -> Batch | None:
        now = self._monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key, trigger = heapq.heappop(self._delayed)
            if key.rel_path not in self._pending:
                self._put(key, trigger)
        if self._stopping and self.config.flush_on_stop:
            self._force = True
            for _, _, key, trigger in self._delayed:
                if key.rel_path not in self._pending:
                    self._put(key, trigger)
            self._delayed.clear()
        if not self._pending:
            self._force = False
            return None
        cap = self.config.max_files
        if self.config.max_files_under_backlog and not self._queue.empty():
            cap = max(cap, self.config.max_files_under_backlog)
        oldest = next(iter(self._pending.values())).first_seen
        if len(self._pending) >= cap:
            reason = SealReason.MAX_FILES
        elif self._force:
            reason = SealReason.STOP if self._stopping else SealReason.FORCE
        elif now - oldest >= window_s:
            reason = SealReason.WINDOW
        else:
            return None
        taken = list(itertools.islice(self._pending.values(), cap))
        for entry in taken:
            del self._pending[entry.key.rel_path]
        if not self._pending:
            self._force = False
        self._lock.notify_all()  # wake add() callers waiting on backpressure
        return Batch(next(self._seq), reason, tuple(taken), now)

    def _wait_s(self, window_s: float) -> float:
        now = self._monotonic()
        deadlines = []
        if self._pending:
            deadlines.append(next(iter(self._pending.values())).first_seen + window_s)
        if self._delayed:
            deadlines.append(self._delayed[0][0])
        if not deadlines:
            return 0.5
        return min(max(min(deadlines) - now, 0.001), 0.5)
