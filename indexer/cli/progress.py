"""The one-line progress display of a catch-up on a terminal: `ocindex index` while it runs,
`ocindex run` and the dashboard while their engine starts (a first catch-up is loaded inside
start(): a million files take 15-30 s)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator

from indexer.facade import IndexerStats

Stats = Callable[[], IndexerStats | None]
"""The indexer's stats now; None while there is no indexer yet."""


class Progress:
    """A one-line progress display on stderr, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._shown = False

    def show(self, stats: IndexerStats | None, elapsed_s: float) -> None:
        if not self.enabled or stats is None:
            return
        done, pending = stats.files_processed, stats.pending_files
        rate = done / elapsed_s if elapsed_s > 0 else 0.0
        sys.stderr.write(
            f"\rindexing: {done:,} files done, {pending:,} pending, {rate:,.0f} files/s   "
        )
        sys.stderr.flush()
        self._shown = True

    @contextlib.contextmanager
    def meanwhile(self, stats: Stats, t0: float) -> Iterator[None]:
        """Show the progress from a thread of its own while the block runs, and once more as it
        ends."""
        if not self.enabled:
            yield
            return
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(0.2):
                self.show(stats(), time.monotonic() - t0)

        thread = threading.Thread(target=loop, name="ocindex-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.show(stats(), time.monotonic() - t0)

    def done(self) -> None:
        """End the line, if one was shown."""
        if self._shown:
            sys.stderr.write("\n")
            self._shown = False
