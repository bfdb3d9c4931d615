"""Reads one file: stat, read, stat again, parse, and what that means (through the one decision
in indexer.outcome). Never raises OSError and never touches the database.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from indexer.kinds import FileKey, FileKind
from indexer.outcome import (
    Failure,
    FailureReason,
    FileRead,
    FileStamp,
    Found,
    ParsedFile,
    RetryPolicy,
    Situation,
    decide,
)
from indexer.records import DEFAULT_MAX_FILE_BYTES, content_hash, parse, too_large


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    settle_s: float = 2.0
    """A file modified this recently that does not parse is still being written: pending."""
    retry_base_s: float = 0.25
    retry_max_s: float = 5.0

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retry_base_s, self.retry_max_s, self.settle_s)


def read_file(
    root: Path,
    key: FileKey,
    config: ProcessorConfig,
    prior_attempts: int = 0,
    wall: Callable[[], float] = time.time,
) -> FileRead:
    """Stat, read, stat again and parse one file, and decide its status. Never raises OSError."""
    path = os.path.join(root, key.rel_path)
    situation = Situation(config.retry, prior_attempts)
    stamp: FileStamp | None = None
    try:
        before = os.stat(path)
        stamp = FileStamp(before.st_mtime_ns, before.st_size)
        if key.kind is FileKind.SKIPPED:
            return decided_read(key, Found.NOT_A_RECORD, situation, stamp)
        if before.st_size > config.max_file_bytes:
            failure = too_large(before.st_size, config.max_file_bytes)
            return failed_read(key, failure, situation, stamp)
        with open(path, "rb") as fh:
            data = fh.read(config.max_file_bytes + 1)
        after = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return decided_read(key, Found.GONE, situation)
    except OSError as exc:
        # Keep the stamp when stat worked: the reconciler then sees no change, only a retry.
        return failed_read(key, disk_failure(exc), situation, stamp)
    before_stamp, stamp = stamp, FileStamp(after.st_mtime_ns, after.st_size)
    if stamp != before_stamp or len(data) != stamp.size:
        read = decided_read(key, Found.CHANGED_WHILE_READ, situation, stamp)
        return replace(read, message="changed while being read")
    digest = content_hash(data)
    result = parse(key, data, config.max_file_bytes)
    if isinstance(result, ParsedFile):
        return decided_read(key, Found.PARSED, situation, stamp, digest, result)
    age_s = wall() - after.st_mtime_ns / 1e9
    return failed_read(key, result, replace(situation, age_s=age_s), stamp, digest)


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
