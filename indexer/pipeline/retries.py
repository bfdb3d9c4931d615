"""What becomes of files whose batch was not committed: each is read again later, and the cause
is logged once while it repeats (a full disk fails every batch)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from indexer.pipeline.accumulator import FileBatchAccumulator, PendingEntry

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


class CommitRetries:
    """Safe from any thread; the files go back to `accumulator` with add_later."""

    def __init__(self, accumulator: FileBatchAccumulator) -> None:
        self._accumulator = accumulator
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        """Consecutive failed commits, by path."""
        self._last_cause = ""

    def committed(self, entries: Iterable[PendingEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._failures.pop(entry.key.rel_path, None)

    def with_backoff(self, entries: Iterable[PendingEntry], exc: Exception) -> None:
        """A bug's failure, not the database's: each file again after 1 s, doubled for each
        failure in a row, up to MAX_BACKOFF_S."""
        cause = one_line(exc)
        if self._new_cause(cause):
            log.error("not committed, retrying with backoff: %s", cause, exc_info=exc)
        for entry in entries:
            with self._lock:
                failures = self._failures.get(entry.key.rel_path, 0)
                self._failures[entry.key.rel_path] = failures + 1
            self._accumulator.add_later(entry.key, min(2.0**failures, MAX_BACKOFF_S), entry.trigger)

    def in_a_second(self, entries: Iterable[PendingEntry], exc: Exception) -> None:
        """The database refused the batch: its files again in a second."""
        text = str(exc).strip()
        cause = text.splitlines()[0] if text else type(exc).__name__
        if self._new_cause(cause):
            log.error("batch not committed, retrying its files: %s", cause)
        for entry in entries:
            self._accumulator.add_later(entry.key, 1.0, entry.trigger)

    def _new_cause(self, cause: str) -> bool:
        with self._lock:
            new, self._last_cause = cause != self._last_cause, cause
        return new


def one_line(exc: BaseException) -> str:
    """An exception's type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
