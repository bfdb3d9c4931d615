"""Simulator runs bounded by a count of writes rather than by seconds of a machine's time: a
loaded machine writes fewer files in 0.5 s, and a test that asserts a count then flakes."""

from __future__ import annotations

import threading
from collections.abc import Callable


class WriteCount:
    """An `on_write` that counts (and keeps) what was written and sets `enough` at `limit`;
    pass both to `run(rate, deadline_s, stop=counter.enough, on_write=counter)`."""

    def __init__(self, limit: int, then: Callable[[str], None] | None = None) -> None:
        self.limit = limit
        self.written: list[str] = []
        self.enough = threading.Event()
        self._then = then

    def __call__(self, key: str) -> None:
        self.written.append(key)
        if self._then is not None:
            self._then(key)
        if len(self.written) >= self.limit:
            self.enough.set()
