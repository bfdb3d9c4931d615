"""The session's log lines while the dashboard owns the terminal: kept in memory for the log
screen, warnings also written to a log file. Never writes to the terminal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KEEP = 5_000
LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    created: float
    level: int
    source: str
    message: str

    @property
    def level_name(self) -> str:
        return logging.getLevelName(self.level)


class LogBook(logging.Handler):
    """A logging handler any thread may emit to; the UI thread reads copies with `since()`.

    Lines at WARNING and above also go to `path` (opened on the first one) when one is given.
    """

    def __init__(
        self,
        keep: int = KEEP,
        path: Path | None = None,
        local_time: Callable[[float], time.struct_time] = time.localtime,
    ) -> None:
        super().__init__(logging.INFO)
        self.local_time = local_time
        """How the log screen turns a line's time into a clock time (tests pass time.gmtime)."""
        self._lines: deque[LogLine] = deque(maxlen=keep)
        self._lock_lines = threading.Lock()
        self._seq = 0
        self.counts: dict[int, int] = {}
        self.path = path
        self.written = 0
        """Lines written to `path`."""
        self._file: logging.FileHandler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string must not lose the line
            message = str(record.msg)
        with self._lock_lines:
            self._seq += 1
            line = LogLine(self._seq, record.created, record.levelno, record.name, message)
            self._lines.append(line)
            self.counts[record.levelno] = self.counts.get(record.levelno, 0) + 1
        if record.levelno >= logging.WARNING and self.path is not None:
            self._to_file(record)

    def _to_file(self, record: logging.LogRecord) -> None:
        if self._file is None:
            assert self.path is not None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = logging.FileHandler(self.path, mode="w", encoding="utf-8")
            except OSError:
                self.path = None  # no file then: the lines stay on the log screen
                return
            self._file.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        self._file.handle(record)
        self.written += 1

    def since(self, seq: int) -> list[LogLine]:
        """The lines after `seq` still kept, oldest first."""
        with self._lock_lines:
            return [line for line in self._lines if line.seq > seq]

    def warnings(self) -> int:
        return sum(n for level, n in self.counts.items() if level >= logging.WARNING)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()

    def summary(self) -> str:
        """One line for the terminal once the dashboard has closed; '' when nothing to say."""
        warnings = self.warnings()
        if not warnings:
            return ""
        where = f"; see {self.path}" if self.path is not None and self.written else ""
        noun = "warning or error" if warnings == 1 else "warnings or errors"
        return f"ocindex: {warnings} {noun} logged during the session{where}"
