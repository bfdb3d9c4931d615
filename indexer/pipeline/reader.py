"""Reads one file: stat, read, stat what was read, parse, and what that means (through the one
decision in indexer.outcome). Never raises OSError and never touches the database.

Never follows a symlink: a link is skipped with the reason `symlink`, wherever it was found, so
no content from outside the root (or twice from inside it) is indexed. A name that is not valid
UTF-8 is skipped with the reason `bad_name`. A file that does not parse settles by how long
this process has seen it unchanged when its mtime lies in the future, never by the mtime alone.
"""

from __future__ import annotations

import errno
import math
import os
import stat as stat_mode
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from indexer.builders import out_of_range
from indexer.fields import Source
from indexer.kinds import FileKey, FileKind, Table
from indexer.outcome import (
    Failure,
    FailureReason,
    FileRead,
    FileStamp,
    Found,
    ParsedFile,
    RetryPolicy,
    Situation,
    clamp_ns,
    decide,
)
from indexer.records import (
    DEFAULT_MAX_FILE_BYTES,
    content_hash,
    parse,
    parse_fields,
    too_large,
)
from indexer.scan import disk_name

SYMLINK = "symlink: a link is never followed (its target may lie outside the storage root)"
BAD_NAME = "bad_name: the file name is not valid UTF-8 (stored with \\xNN escapes)"
NOT_A_FILE = (
    "not a regular file (a fifo, socket or device): never opened, as the scan never lists it"
)


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    settle_s: float = 2.0
    """A file modified this recently that does not parse is still being written: pending."""
    retry_base_s: float = 0.25
    retry_max_s: float = 5.0
    retry: RetryPolicy = field(init=False, repr=False, compare=False)
    """The retry policy these settings make, built once (every read looks at it)."""
    first_read: Situation = field(init=False, repr=False, compare=False)
    """The situation of a file read with no failed attempt before: most reads."""

    def __post_init__(self) -> None:
        policy = RetryPolicy(self.retry_base_s, self.retry_max_s, self.settle_s)
        object.__setattr__(self, "retry", policy)
        object.__setattr__(self, "first_read", Situation(policy))


def read_file(
    root: Path | str,
    key: FileKey,
    config: ProcessorConfig,
    prior_attempts: int = 0,
    wall: Callable[[], float] = time.time,
    history: str | None = None,
) -> FileRead:
    """Stat, read, stat the descriptor read and parse one file, and decide its status. Never
    raises OSError. A file whose kind the store now holds (`history`: why) is only stat'ed:
    whatever it holds, it is tracked as skipped, with that reason."""
    raw_name = disk_name(key.rel_path)
    path = f"{os.fspath(root)}/{raw_name or key.rel_path}"  # a stored path is relative
    situation = Situation(config.retry, prior_attempts) if prior_attempts else config.first_read
    stamp: FileStamp | None = None
    try:
        before = os.lstat(path)
        stamp = FileStamp(clamp_ns(before.st_mtime_ns), before.st_size)
        link = stat_mode.S_ISLNK(before.st_mode)
        if not link and not stat_mode.S_ISREG(before.st_mode):
            # Opening a fifo would wait for a writer, forever: it counts as no file at all.
            return replace(decided_read(key, Found.GONE, situation), message=NOT_A_FILE)
        if link or raw_name is not None:
            read = decided_read(key, Found.NOT_A_RECORD, situation, stamp)
            return replace(read, message=SYMLINK if link else BAD_NAME)
        if key.kind is FileKind.SKIPPED:
            return decided_read(key, Found.NOT_A_RECORD, situation, stamp)
        if history is not None:
            return replace(decided_read(key, Found.HISTORY, situation, stamp), message=history)
        if before.st_size > config.max_file_bytes:
            failure = too_large(before.st_size, config.max_file_bytes)
            return failed_read(key, failure, situation, stamp)
        fd = _open(path)
        try:
            data = _read(fd, before.st_size + 1)
            after = os.fstat(fd)  # the inode read: a rename over the path later is a new event
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        return decided_read(key, Found.GONE, situation)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            read = decided_read(key, Found.NOT_A_RECORD, situation, stamp)
            return replace(read, message=SYMLINK)
        # Keep the stamp when stat worked: the reconciler then sees no change, only a retry.
        return failed_read(key, disk_failure(exc), situation, stamp)
    before_stamp, stamp = stamp, FileStamp(clamp_ns(after.st_mtime_ns), after.st_size)
    if stamp != before_stamp or len(data) != stamp.size:
        read = decided_read(key, Found.CHANGED_WHILE_READ, situation, stamp)
        return replace(read, message="changed while being read")
    return read_bytes(key, data, stamp, config, situation, wall)


def read_bytes(
    key: FileKey,
    data: bytes,
    stamp: FileStamp,
    config: ProcessorConfig,
    situation: Situation,
    wall: Callable[[], float] = time.time,
) -> FileRead:
    """What a file's bytes mean, read whole with this stamp unchanged while they were read."""
    clean = parsed_cleanly(key.kind, key.record_id, key.parent_id, data, config)
    if isinstance(clean, tuple):
        digest, table, owner, sources = clean
        parsed = ParsedFile(table, owner, sources)
        return decided_read(key, Found.PARSED, situation, stamp, digest, parsed)
    return read_unclean(key, data, stamp, config, situation, clean, wall)


def read_unclean(
    key: FileKey,
    data: bytes,
    stamp: FileStamp,
    config: ProcessorConfig,
    situation: Situation,
    failure: Failure | None,
    wall: Callable[[], float] = time.time,
) -> FileRead:
    """read_bytes for the bytes parsed_cleanly did not take: they did not parse (`failure`), or
    they hold a number past 64 bits (None: not parsed yet)."""
    digest = content_hash(data)
    result = parse(key, data, config.max_file_bytes) if failure is None else failure
    if isinstance(result, ParsedFile):
        result, columns = clamp_rows(result)
        read = decided_read(key, Found.PARSED, situation, stamp, digest, result)
        clamped = clamped_fields(data) + [f"{c} (computed)" for c in columns]
        if clamped:
            note = f"out_of_range: stored as NULL (outside 64-bit integers): {', '.join(clamped)}"
            return replace(read, message=note)
        return read
    age_s = wall() - stamp.mtime_ns / 1e9
    if age_s >= 0:
        return failed_read(key, result, replace(situation, age_s=age_s), stamp, digest)
    # An mtime in the future (a clock ahead, a copied file) would keep it unsettled for ever.
    unchanged_s = UNCHANGED.seen_for(key.rel_path, stamp)
    read = failed_read(key, result, replace(situation, age_s=unchanged_s), stamp, digest)
    return replace(read, message=f"{read.message} (its mtime lies in the future)")


CleanRead = tuple[str, Table, str, tuple[Source, ...]]
"""A file's content hash and its ParsedFile's fields (table, owner id, sources)."""


def parsed_cleanly(
    kind: FileKind, record_id: str, parent_id: str, data: bytes, config: ProcessorConfig
) -> CleanRead | Failure | None:
    """read_bytes' common case as plain values: bytes that parse, with no number past 64 bits,
    are indexed (Found.PARSED) with this hash and these fields; a worker makes no object per
    file from it (read_worker). Else what read_unclean needs: why they did not parse, or None
    for a number past 64 bits (they are not parsed here)."""
    if _LONG_DIGITS in data.translate(_DIGIT_CLASSES):  # a number near 2^63: clamped, noted
        return None
    result = parse_fields(kind, record_id, parent_id, data, config.max_file_bytes)
    if isinstance(result, Failure):
        return result
    return content_hash(data), *result


_DIGIT_CLASSES = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_DIGITS = b"0" * 19
"""Cheap pre-check (the bytes' digits as "0", the rest as spaces): a number outside 64-bit
integers has at least 19 digits in a row. Ten times faster than a regular expression."""
_BIGINT = 2**63


def clamped_fields(data: bytes) -> list[str]:
    """The dotted paths of the numbers in a JSON document that no BIGINT column holds (the
    builders store them as NULL); at most five."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    found: list[str] = []
    stack: list[tuple[str, object]] = [("", doc)]
    while stack and len(found) < 5:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not -_BIGINT <= value < _BIGINT:
            found.append(where)
        elif isinstance(value, float) and math.isfinite(value) and abs(value) >= 2**62:
            found.append(where)  # orjson reads integers past 64 bits as floats
    return sorted(found)


def clamp_rows(parsed: ParsedFile) -> tuple[ParsedFile, list[str]]:
    """The parsed file, whose rows read every integer that its BIGINT column cannot hold (a sum
    of huge token counts) as NULL, as the writer stores it, and the names of those columns."""
    if parsed.table.build is None or not parsed.sources:
        return parsed, []
    columns = parsed.table.build(parsed.sources)
    bad = out_of_range([sql for _, sql in parsed.table.columns], columns)
    return parsed, sorted(parsed.table.columns[i][0] for i in bad)


class UnchangedClock:
    """How long this process has seen each path with one stamp, by the monotonic clock; only
    for files whose mtime cannot tell (it lies in the future). Bounded; safe from any thread."""

    def __init__(self, limit: int = 10_000, monotonic: Callable[[], float] = time.monotonic):
        self._seen: OrderedDict[str, tuple[FileStamp, float]] = OrderedDict()
        self._limit = limit
        self._monotonic = monotonic
        self._lock = threading.Lock()

    def seen_for(self, rel_path: str, stamp: FileStamp) -> float:
        """Seconds since this stamp of the path was first seen (0 the first time)."""
        now = self._monotonic()
        with self._lock:
            known = self._seen.get(rel_path)
            if known is None or known[0] != stamp:
                known = (stamp, now)
            self._seen[rel_path] = known
            self._seen.move_to_end(rel_path)
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)
        return now - known[1]


UNCHANGED = UnchangedClock()


def _open(path: str) -> int:
    return os.open(path, _READ_FLAGS)


def _read(fd: int, limit: int) -> bytes:
    """Up to limit bytes: the file's size as stat saw it, plus one to see that it grew. Asking
    for the size limit instead would allocate 16 MiB for every file; one read(2) on a plain
    descriptor (a short one reads as a change, and the file is read again)."""
    try:
        return os.read(fd, limit)
    except BlockingIOError:
        return b""  # a fifo swapped in and held by a writer: nothing yet, which reads as a change


# O_NOFOLLOW: a link swapped in after the lstat is refused (ELOOP), not followed.
# O_NONBLOCK: a fifo swapped in after the lstat reads as empty (a change), never blocks.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def disk_failure(exc: OSError) -> Failure:
    """Why the disk refused a read: permissions, or any other I/O error."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    denied = exc.errno in (errno.EACCES, errno.EPERM)
    return Failure(FailureReason.UNREADABLE if denied else FailureReason.IO_ERROR, reason)


def decided_read(
    key: FileKey,
    found: Found,
    situation: Situation,
    stamp: FileStamp | None = None,
    digest: str | None = None,
    parsed: ParsedFile | None = None,
) -> FileRead:
    status, retry_in_s = decide(found, situation)
    return FileRead(key, status, stamp, digest, parsed, retry_in_s=retry_in_s)


def failed_read(
    key: FileKey,
    failure: Failure,
    situation: Situation,
    stamp: FileStamp | None,
    digest: str | None = None,
) -> FileRead:
    status, retry_in_s = decide(Found.FAILED, replace(situation, reason=failure.reason))
    return FileRead(key, status, stamp, digest, message=failure.describe(), retry_in_s=retry_in_s)
