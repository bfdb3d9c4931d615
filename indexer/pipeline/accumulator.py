"""Collects change keys into batches: deduplicated, sealed by the window, the file cap or an
idle pipeline, and handed in order to the one writer. Never touches the filesystem or the database.

add() is safe from any thread. When to seal is decide_seal(), a pure function of the open batch
and the clock; the sealer thread, begun by start(), applies it. Batches leave through a bounded
queue, so when the writer falls behind keys coalesce in the pending set and add() eventually
waits: nothing is dropped and memory stays bounded. A key whose path waits in a sealed batch
not yet taken by the consumer coalesces into that batch: the file is read after this add().
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from indexer.config import IDLE_SEAL_MS, MAX_BATCH_FILES_UNDER_BACKLOG
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
    WINDOW = "window"
    IDLE = "idle"
    MAX_FILES = "max_files"
    FORCE = "force"
    STOP = "stop"
    CATCH_UP = "catch_up"
    """A first catch-up's batch, loaded in bulk past the accumulator (pipeline.first_load)."""


@dataclass(frozen=True, slots=True)
class AccumulatorConfig:
    window_ms: float = 200.0
    max_files: int = 100
    flush_on_stop: bool = True
    max_queued_batches: int = 1
    """Sealed batches waiting for the reader. One, sealed late: a key arriving while the slot is
    taken waits in the open batch and joins the next batch, not a queue of them (5,000 files/s
    paced: p95 201-425 ms against 470-576 ms with 4; docs/benchmarks.md)."""
    max_pending_files: int = 50_000
    """add() waits while this many distinct keys are pending (backpressure)."""
    max_files_under_backlog: int | None = MAX_BATCH_FILES_UNDER_BACKLOG
    """Adaptive mode (None: off): while a sealed batch is still in the pipeline, seal everything
    pending up to this many. Light load keeps batches of max_files and their latency; a backlog
    gets throughput."""
    idle_ms: float | None = IDLE_SEAL_MS
    """When no sealed batch is being read or committed, seal once the oldest key is this old
    instead of waiting out the window (None: the window only). Group commit: a light load is
    indexed at once, and what arrives while a batch is busy joins the next one."""

    def __post_init__(self) -> None:
        if self.window_ms < 0 or self.max_files < 1 or self.max_queued_batches < 1:
            raise ValueError("window_ms >= 0, max_files >= 1 and max_queued_batches >= 1")
        if self.idle_ms is not None and self.idle_ms < 0:
            raise ValueError("idle_ms >= 0 or None")


@dataclass(frozen=True, slots=True)
class OpenBatch:
    """What the sealing policy sees of the open batch at one instant."""

    pending_files: int
    oldest_first_seen: float | None
    """Monotonic time the oldest pending key arrived; None when nothing is pending."""
    next_retry_due: float | None
    """Monotonic time the earliest delayed retry falls due; None when none waits."""
    forced: bool
    """force_flush() asked for everything pending to be sealed."""
    stopping: bool
    in_flight: bool = False
    """A sealed batch is still being read or committed: the pipeline is busy."""


@dataclass(frozen=True, slots=True)
class SealDecision:
    """Seal `files` keys for `reason` now, or (reason None) keep the batch open."""

    reason: SealReason | None
    files: int
    """How many pending keys, oldest first, go into the batch; 0 when nothing is sealed."""
    wait_s: float
    """When nothing is sealed: how long the sealer may sleep before deciding again."""
    finished: bool
    """Stopping with nothing left to seal: the sealer ends."""


ADD_SLICE = 1_000
"""add_many() holds the lock for at most this many keys at a time."""

IDLE_WAIT_S = 0.5
"""The longest the sealer sleeps between decisions, so a missed wake-up costs little."""


def decide_seal(batch: OpenBatch, config: AccumulatorConfig, now: float) -> SealDecision:
    """Decide whether the open batch seals at monotonic time `now`, why, and how big.

    The file cap comes first, then a forced flush (a flushing stop forces one too), then the
    window counted from the oldest pending key, then an idle pipeline (nothing in flight) once
    that key is idle_ms old. While a sealed batch is in flight, the cap grows to what is
    pending, up to max_files_under_backlog when set (the sealer seals only into an empty queue
    slot, so what is pending then is what arrived while the pipeline was busy).
    """
    cap = config.max_files
    if config.max_files_under_backlog and batch.in_flight:
        cap = max(cap, min(config.max_files_under_backlog, batch.pending_files))
    window_s = config.window_ms / 1000.0
    due_s = window_s  # how old the oldest key may grow before something seals it
    if config.idle_ms is not None and not batch.in_flight:
        due_s = min(window_s, config.idle_ms / 1000.0)
    oldest = batch.oldest_first_seen if batch.pending_files else None
    if oldest is not None:
        reason: SealReason | None = None
        if batch.pending_files >= cap:
            reason = SealReason.MAX_FILES
        elif batch.forced or (batch.stopping and config.flush_on_stop):
            reason = SealReason.STOP if batch.stopping else SealReason.FORCE
        elif now - oldest >= window_s:
            reason = SealReason.WINDOW
        elif now - oldest >= due_s:
            reason = SealReason.IDLE
        if reason is not None:
            return SealDecision(reason, min(batch.pending_files, cap), 0.0, False)
    deadlines: list[float] = []
    if oldest is not None:
        deadlines.append(oldest + due_s)
    if batch.next_retry_due is not None:
        deadlines.append(batch.next_retry_due)
    wait_s = min(max(min(deadlines) - now, 0.001), IDLE_WAIT_S) if deadlines else IDLE_WAIT_S
    # Without flush_on_stop, what is still pending is handed over through drain_pending().
    return SealDecision(None, 0, wait_s, finished=batch.stopping)


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
    """Thread-safe pending set feeding one consumer through a bounded queue of batches; the
    consumer calls done() once a batch is committed. Nothing is sealed before start()."""

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
        self._abandoned = False
        """Keys added from now on are dropped (abandon()); a plain flag a signal handler sets."""
        self.dropped = 0
        """Keys dropped since abandon()."""
        # One place more than the batches it holds: for None, put once the sealer has ended so
        # that a consumer waiting in get_batch() returns at once, not at its timeout.
        self._queue: queue.Queue[Batch | None] = queue.Queue(self.config.max_queued_batches + 1)
        self._ended = False
        self._batches_sent = self._files_sent = self._coalesced = 0
        self._sealed: Counter[str] = Counter()  # paths in batches sealed and not yet done()
        self._queued: Counter[str] = Counter()  # paths in sealed batches not yet taken
        self._thread = threading.Thread(target=self._seal_loop, name="ocindex-sealer", daemon=True)

    def add(self, key: FileKey, trigger: Trigger = Trigger.WATCHER) -> None:
        self.add_many((key,), trigger)

    def add_many(self, keys: Iterable[FileKey], trigger: Trigger = Trigger.WATCHER) -> None:
        """Add keys to the open batch; a key already pending keeps its place and age.

        The lock is taken for ADD_SLICE keys at a time: a reconciler adding thousands would
        otherwise hold up the sealer, the reader's get_batch() and the writer's done() meanwhile
        (a first catch-up's pipeline stood idle until the first 50,000 keys were in)."""
        remaining = iter(keys)
        while chunk := list(itertools.islice(remaining, ADD_SLICE)):
            with self._lock:
                # Taken under the lock, so the pending dict stays in order of first sight
                # (the oldest key is its first entry) whatever other callers do in between.
                seen_at, event_at = self._monotonic(), self._wall()
                for i, key in enumerate(chunk):
                    while (
                        len(self._pending) >= self.config.max_pending_files
                        and key.rel_path not in self._pending
                        and not self._stopping
                        and not self._abandoned
                    ):
                        self._lock.wait(0.1)  # backpressure: the writer is behind
                        seen_at, event_at = self._monotonic(), self._wall()
                    if self._abandoned:
                        self.dropped += len(chunk) - i
                        break
                    self._put(key, trigger, seen_at, event_at)
                self._lock.notify_all()

    def add_later(self, key: FileKey, delay_s: float, trigger: Trigger = Trigger.RETRY) -> None:
        """Add a key once delay_s has passed (retry backoff); an earlier add supersedes it."""
        with self._lock:
            due = self._monotonic() + delay_s
            heapq.heappush(self._delayed, (due, next(self._tie), key, trigger))
            self._lock.notify_all()

    def _put(self, key: FileKey, trigger: Trigger, seen_at: float, event_at: float) -> None:
        if key.rel_path in self._queued:  # its batch is not read yet: that read will see it
            self._coalesced += 1
            return
        old = self._pending.get(key.rel_path)
        if old is None:
            self._pending[key.rel_path] = PendingEntry(key, trigger, seen_at, event_at)
        else:
            self._coalesced += 1
            if old.trigger is not trigger:  # the newest cause is the one shown
                self._pending[key.rel_path] = PendingEntry(
                    old.key, trigger, old.first_seen, old.event_at
                )

    def _promote(self, due_by: float) -> None:
        """Move the retries due by `due_by` into the open batch; a key already pending wins."""
        while self._delayed and self._delayed[0][0] <= due_by:
            _, _, key, trigger = heapq.heappop(self._delayed)
            if key.rel_path not in self._pending:
                self._put(key, trigger, self._monotonic(), self._wall())

    def force_flush(self) -> None:
        """Seal everything pending now, in batches of at most max_files; due retries included."""
        with self._lock:
            self._force = True
            self._lock.notify_all()

    def get_batch(self, timeout_s: float | None = None) -> Batch | None:
        """Return the next sealed batch in order, or None when none came within timeout_s."""
        try:
            batch = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if batch is None:  # the sealer has ended: every later call returns at once too
            self._queue.put_nowait(None)
            return None
        with self._lock:  # from now on the batch may be read: later changes need a new batch
            _release(self._queued, batch.entries)
            self._lock.notify_all()  # the queue has room: the sealer may seal
        return batch

    def done(self, batch: Batch) -> None:
        """The consumer is finished with a batch (committed, or its retries scheduled)."""
        with self._lock:
            _release(self._sealed, batch.entries)
            if not self._sealed:
                self._lock.notify_all()  # the pipeline is idle: what is pending may seal now

    def start(self) -> None:
        """Begin the sealer thread; keys added before it are sealed by the same rules."""
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop sealing; with flush_on_stop, everything pending (retries too) is sealed first.

        The consumer must keep draining get_batch() meanwhile, or this waits for queue room.
        """
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread.ident is not None:  # never started: nothing to wait for
            self._thread.join(timeout_s)

    def abandon(self) -> None:
        """Drop every key added from now on, and release an add waiting for room: the process is
        stopping before its catch-up is done, and the next start's reconcile finds what was not
        committed. What is pending already stays. Only sets a flag: safe from a signal handler."""
        self._abandoned = True

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stopping

    def is_sealing(self) -> bool:
        """True from start() until stop() has sealed everything and the sealer has ended."""
        return self._thread.is_alive() and not self._ended

    def is_idle(self) -> bool:
        """True when no key is pending, waiting for a retry, or in a batch not yet done()."""
        with self._lock:
            return not (self._pending or self._delayed or self._sealed)

    def drain_pending(self) -> list[PendingEntry]:
        """Take everything not yet sealed, delayed retries included (for a handover)."""
        with self._lock:
            self._promote(math.inf)
            taken = list(self._pending.values())
            self._pending.clear()
            self._lock.notify_all()
            return taken

    def get_stats(self) -> AccumulatorStats:
        with self._lock:
            oldest = next(iter(self._pending.values()), None)
            return AccumulatorStats(
                batches_sent=self._batches_sent,
                files_sent=self._files_sent,
                pending_files=len(self._pending),
                oldest_pending_age_s=None
                if oldest is None
                else self._monotonic() - oldest.first_seen,
                queue_depth=max(0, self._queue.qsize() - self._ended),
                delayed_files=len(self._delayed),
                coalesced=self._coalesced,
            )

    def pending_files(self, limit: int = 100) -> list[PendingFile]:
        """Return what waits in the open batch, newest first."""
        with self._lock:
            return newest_pending(self._pending.values(), self._monotonic(), limit)

    def pending_paths(self) -> set[str]:
        """Return every path pending, waiting for a retry, or in a batch not yet done()."""
        with self._lock:
            delayed = {key.rel_path for _, _, key, _ in self._delayed}
            return set(self._pending) | set(self._sealed) | delayed

    def _seal_loop(self) -> None:
        while True:
            with self._lock:
                now = self._monotonic()
                decision = self._decide(now)
                # Sealed late: while the queue is full, keys keep joining the open batch
                # (get_batch() wakes this thread when it takes one), not a batch held here.
                while decision.reason is None or self._queue_full():
                    if decision.finished:
                        self._ended = True
                        self._queue.put_nowait(None)  # its place is kept (__init__)
                        return
                    self._lock.wait(IDLE_WAIT_S if decision.reason else decision.wait_s)
                    now = self._monotonic()
                    decision = self._decide(now)
                assert decision.reason is not None
                batch = self._seal(decision.reason, decision.files, now)
            # Never blocks: this thread alone puts, and it saw room under the lock.
            self._queue.put(batch)

    def _queue_full(self) -> bool:
        return self._queue.qsize() >= self.config.max_queued_batches

    def _decide(self, now: float) -> SealDecision:
        """Move due retries (all of them on a flushing stop) into the open batch, then decide."""
        self._promote(math.inf if self._stopping and self.config.flush_on_stop else now)
        if not self._pending:
            self._force = False
        oldest = next(iter(self._pending.values()), None)
        state = OpenBatch(
            pending_files=len(self._pending),
            oldest_first_seen=oldest.first_seen if oldest else None,
            next_retry_due=self._delayed[0][0] if self._delayed else None,
            forced=self._force,
            stopping=self._stopping,
            in_flight=bool(self._sealed),
        )
        return decide_seal(state, self.config, now)

    def _seal(self, reason: SealReason, files: int, now: float) -> Batch:
        """Take the oldest `files` pending keys as the next batch."""
        taken = tuple(itertools.islice(self._pending.values(), files))
        for entry in taken:
            del self._pending[entry.key.rel_path]
            self._sealed[entry.key.rel_path] += 1
            self._queued[entry.key.rel_path] += 1
        if not self._pending:
            self._force = False
        self._batches_sent += 1
        self._files_sent += len(taken)
        self._lock.notify_all()  # wake add() callers waiting on backpressure
        return Batch(self._batches_sent, reason, taken, now)


def _release(counts: Counter[str], entries: Iterable[PendingEntry]) -> None:
    """Count each entry's path once less, dropping the paths that reach zero. Counter's `-=`
    would also visit every other path it holds: per batch, every path in flight."""
    for entry in entries:
        path = entry.key.rel_path
        left = counts[path] - 1
        if left > 0:
            counts[path] = left
        else:
            counts.pop(path, None)
