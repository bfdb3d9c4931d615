"""What waits for v1's worker: files, each due debounce_ms after its LAST event, and rescans.
Never reads a file or touches the database: it only says which job the worker takes next.

The map holds one entry per path; a new event re-arms it (a later due time, a new sequence
number) and pushes it onto a heap, where the superseded entry is skipped when it surfaces.
Rescan requests go before any file.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, ValuesView
from dataclasses import dataclass

from indexer.kinds import FileKey
from indexer.legacy.bulk import BulkRequest
from indexer.pipeline.accumulator import PendingEntry, Trigger


@dataclass(slots=True)
class Waiting:
    """One file in the debounce map; guarded by the debouncer's condition."""

    key: FileKey
    trigger: Trigger
    first_seen: float
    """Monotonic time the file joined the map."""
    event_at: float
    """Wall time of the earliest unprocessed event."""
    due: float
    """Monotonic time the worker may take it."""
    seq: int


class Debouncer:
    """Safe from any thread: every method takes the condition it was given (the indexer's, which
    guards its counters too), except values() and len(), for a caller that holds it."""

    def __init__(self, cond: threading.Condition, debounce_s: float) -> None:
        self._cond = cond
        self._debounce_s = debounce_s
        self._waiting: dict[str, Waiting] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._requests: deque[BulkRequest] = deque()
        self._busy = False
        self._draining = False
        self._halt = False
        self._closed = False

    def __len__(self) -> int:
        return len(self._waiting)

    def values(self) -> ValuesView[Waiting]:
        return self._waiting.values()

    def paths(self) -> set[str]:
        with self._cond:
            return set(self._waiting)

    @property
    def draining(self) -> bool:
        """True once stop(flush=True) began: everything left is taken now, no retry is added."""
        return self._draining

    @property
    def closed(self) -> bool:
        return self._closed

    # --- intake ------------------------------------------------------------------------------

    def open(self, handover: Iterable[PendingEntry]) -> None:
        """Accept work again, the handed-over files due now; busy until set_busy(False)."""
        with self._cond:
            self._draining = self._halt = self._closed = False
            now = time.monotonic()
            for entry in handover:
                self._put(entry.key, Trigger.HANDOVER, now, entry.first_seen, entry.event_at)
            self._busy = True

    def add(self, keys: Iterable[FileKey], trigger: Trigger) -> None:
        """Debounce these files: each is due debounce_s after its last submission."""
        now = time.monotonic()
        due = now + self._debounce_s
        with self._cond:
            if self._closed:
                return
            for key in keys:
                self._put(key, trigger, due)
            self._cond.notify_all()

    def retry_later(self, key: FileKey, delay_s: float, trigger: Trigger = Trigger.RETRY) -> None:
        """Schedule a retry unless the file is already waiting (a newer event re-armed it)."""
        with self._cond:
            if self._closed or key.rel_path in self._waiting:
                return
            now = time.monotonic()
            self._put(key, trigger, now + delay_s, now, time.time() + delay_s)
            self._cond.notify_all()

    def request(self, request: BulkRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    def request_once(self, request: BulkRequest) -> None:
        """Queue a rescan unless one is queued already or the worker is closed."""
        with self._cond:
            if not self._closed and not self._requests:
                self._requests.append(request)
                self._cond.notify_all()

    def flush(self) -> None:
        """Make every debounced file (and waiting retry) due now."""
        now = time.monotonic()
        with self._cond:
            for waiting in self._waiting.values():
                waiting.due, waiting.seq = now, next(self._seq)
                heapq.heappush(self._heap, (now, waiting.seq, waiting.key.rel_path))
            self._cond.notify_all()

    def _put(
        self,
        key: FileKey,
        trigger: Trigger,
        due: float,
        first_seen: float | None = None,
        event_at: float | None = None,
    ) -> None:
        """Add or re-arm one file; the caller holds the condition."""
        seq = next(self._seq)
        old = self._waiting.get(key.rel_path)
        if old is not None:
            old.trigger, old.due, old.seq = trigger, due, seq
        else:
            self._waiting[key.rel_path] = Waiting(
                key,
                trigger,
                time.monotonic() if first_seen is None else first_seen,
                time.time() if event_at is None else event_at,
                due,
                seq,
            )
        heapq.heappush(self._heap, (due, seq, key.rel_path))

    # --- the worker's side -------------------------------------------------------------------

    def take(self, stopped: Callable[[], bool]) -> Waiting | BulkRequest | None:
        """Block until there is a job (the worker is busy until its next take); None: end."""
        with self._cond:
            self._busy = False
            while True:
                if stopped() or self._halt:
                    return None
                if self._requests:
                    self._busy = True
                    return self._requests.popleft()
                now = time.monotonic()
                waiting = self._pop_due(now, everything=self._draining)
                if waiting is not None:
                    self._busy = True
                    return waiting
                if self._draining:
                    return None
                timeout = 0.5
                if self._heap:
                    timeout = min(timeout, self._heap[0][0] - now)
                self._cond.wait(max(timeout, 0.001))

    def _pop_due(self, now: float, everything: bool) -> Waiting | None:
        while self._heap:
            due, seq, path = self._heap[0]
            waiting = self._waiting.get(path)
            if waiting is None or waiting.seq != seq:
                heapq.heappop(self._heap)  # superseded by a later event
                continue
            if not everything and due > now:
                return None
            heapq.heappop(self._heap)
            del self._waiting[path]
            return waiting
        return None

    def set_busy(self, busy: bool) -> None:
        with self._cond:
            self._busy = busy

    def is_idle(self) -> bool:
        """True when nothing waits and no job is running."""
        with self._cond:
            return not (self._waiting or self._busy or self._requests)

    # --- stopping ----------------------------------------------------------------------------

    def close(self, flush: bool) -> None:
        """Accept nothing more; the worker then takes everything (flush) or stops at once."""
        with self._cond:
            self._closed = True
            if flush:
                self._draining = True
            else:
                self._halt = True
            self._cond.notify_all()

    def drain(self) -> tuple[list[PendingEntry], list[BulkRequest]]:
        """Empty the map and the requests; return the files (soonest due first) and requests."""
        with self._cond:
            leftover = [
                PendingEntry(w.key, w.trigger, w.first_seen, w.event_at)
                for w in sorted(self._waiting.values(), key=lambda w: w.due)
            ]
            self._waiting.clear()
            self._heap.clear()
            requests = list(self._requests)
            self._requests.clear()
        return leftover, requests
