"""What one file (or source record) came to: its status, stamp and reason, and THE rule that
decides them. Never does I/O: readers report what they found, this module says what it means.

Every reader (the JSON file reader, the SQLite source, v1's bulk path) describes what it saw as
a `Found`; `decide` turns that into a status and a retry delay by one table; the reconciler and
v1 share `needs_retry` (and its SQL twin) for rows that wait for a retry.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from indexer.builders import Source, clamped, out_of_range
from indexer.kinds import FileKey, Table

if TYPE_CHECKING:
    import pyarrow as pa


class FileStatus(enum.StrEnum):
    INDEXED = "indexed"
    ERROR = "error"
    PENDING = "pending"
    DELETED = "deleted"
    SKIPPED = "skipped"


BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def clamp_ns(mtime_ns: int) -> int:
    """An mtime in ns held at the bounds of a BIGINT, where file_index keeps it: a file dated
    before 1677 or after 2262 (`touch -d 2400-01-01`) is stamped, not refused."""
    return (
        mtime_ns
        if BIGINT_MIN <= mtime_ns <= BIGINT_MAX
        else min(max(mtime_ns, BIGINT_MIN), BIGINT_MAX)
    )


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What the reconciler compares with !=: a rewrite changes one or the other."""

    mtime_ns: int
    size: int


class FailureReason(enum.StrEnum):
    EMPTY = "empty"
    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    NOT_OBJECT = "not_object"
    NOT_ARRAY = "not_array"
    TOO_LARGE = "too_large"
    MISSING_ID = "missing_id"
    UNREADABLE = "unreadable"
    """The disk refused (permissions): the bytes were never seen."""
    IO_ERROR = "io_error"
    """Any other OSError while reading."""

    @property
    def may_be_unsettled(self) -> bool:
        """True when a reader could see this mid-write: a write cut mid-character even reads as
        invalid UTF-8, so only a size limit (or the disk itself) never heals by itself."""
        return self not in (FailureReason.TOO_LARGE, *RETRIED_BY_RECONCILER)

    @property
    def is_retried_by_reconciler(self) -> bool:
        """Errors of the disk, not of the bytes: the reconciler retries them on every scan."""
        return self in RETRIED_BY_RECONCILER


RETRIED_BY_RECONCILER = (FailureReason.UNREADABLE, FailureReason.IO_ERROR)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a file cannot be indexed: the reason, and a message that says exactly where."""

    reason: FailureReason
    message: str

    def describe(self) -> str:
        """The text stored in file_index.error_message: `<reason>: <message>`."""
        return f"{self.reason}: {self.message}"


@dataclass(frozen=True, slots=True)
class BuiltRows:
    """Rows start to start + count of an Arrow table of many files' rows (built by a worker)."""

    table: pa.Table
    start: int
    count: int


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """The rows one file contributes: a single table's rows (possibly none for an empty array),
    as the sources they are built from; a batch's writer builds all its rows' columns at once.
    A file read by a worker process comes with its rows already built (`built`) instead."""

    table: Table
    owner_id: str
    sources: tuple[Source, ...]
    built: BuiltRows | None = None
    """The file's rows as Arrow columns, built where the file was read (then sources is empty)."""

    @property
    def rows(self) -> tuple[tuple[Any, ...], ...]:
        """The rows one by one, every integer no BIGINT holds as None (as they are stored)."""
        if self.built is not None:
            import pyarrow as pa  # only here: most processes never hold built rows

            built = self.built.table.slice(self.built.start, self.built.count)
            # Times as the sources hold them (epoch milliseconds), as for rows built here.
            arrays = (
                c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c for c in built.columns
            )
            return tuple(zip(*(a.to_pylist() for a in arrays), strict=True))
        if self.table.build is None or not self.sources:
            return ()
        columns = self.table.build(self.sources)
        types = [sql for _, sql in self.table.columns]
        for i in out_of_range(types, columns):
            columns[i] = clamped(columns[i])
        return tuple(zip(*columns, strict=True))


@dataclass(frozen=True, slots=True)
class FileRead:
    """What reading one file found and what it means: its status, rows and retry."""

    key: FileKey
    status: FileStatus
    stamp: FileStamp | None = None
    content_hash: str | None = None
    parsed: ParsedFile | None = None
    message: str | None = None
    retry_in_s: float | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One committed batch, handed to metrics and the dashboard after the commit."""

    batch_id: int
    indexer_version: str
    trigger: str
    files: int
    indexed: int
    errors: int
    pending: int
    deleted: int
    skipped: int
    dropped: int
    by_kind: dict[str, int]
    queue_wait_ms: float
    processing_ms: float
    committed_at: float
    event_latency_ms: tuple[float, ...]
    reads: tuple[FileRead, ...] = field(repr=False)

    @property
    def retries(self) -> list[tuple[FileKey, float]]:
        return [(r.key, r.retry_in_s) for r in self.reads if r.retry_in_s is not None]

    @classmethod
    def of(
        cls,
        *,
        batch_id: int,
        indexer_version: str,
        trigger: str,
        reads: Sequence[FileRead],
        kept: Sequence[FileRead],
        queue_wait_ms: float,
        processing_ms: float,
        committed_at: float,
        event_at: Sequence[float],
    ) -> BatchResult:
        """The result of reading `reads`, of which `kept` were written (a vanished file that was
        never tracked is dropped)."""
        counts = Counter(r.status for r in kept)
        return cls(
            batch_id=batch_id,
            indexer_version=indexer_version,
            trigger=trigger,
            files=len(reads),
            indexed=counts[FileStatus.INDEXED],
            errors=counts[FileStatus.ERROR],
            pending=counts[FileStatus.PENDING],
            deleted=counts[FileStatus.DELETED],
            skipped=counts[FileStatus.SKIPPED],
            dropped=len(reads) - len(kept),
            by_kind=dict(Counter(str(r.key.kind) for r in reads)),
            queue_wait_ms=queue_wait_ms,
            processing_ms=processing_ms,
            committed_at=committed_at,
            event_latency_ms=tuple(max(0.0, (committed_at - t) * 1000) for t in event_at),
            reads=tuple(reads),
        )


# --- the one decision ------------------------------------------------------------------------


class Found(enum.StrEnum):
    """What a reader saw, before anyone decided what it means."""

    PARSED = "parsed"
    NOT_A_RECORD = "not_a_record"
    """A file of a kind we do not index, or a key its source does not know."""
    GONE = "gone"
    CHANGED_WHILE_READ = "changed_while_read"
    FAILED = "failed"
    STORE_BUSY = "store_busy"
    """A database that is locked right now: asked again soon."""
    STORE_UNAVAILABLE = "store_unavailable"
    """A database that is missing, mid-migration or unknown: the reconciler asks again."""
    HISTORY = "history"
    """A JSON copy of a record kind OpenCode's store now holds: the store's copy counts."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 0.25
    max_s: float = 5.0
    settle_s: float = 2.0
    """A file modified this recently that does not parse is still being written: pending."""

    def backoff_s(self, attempts: int) -> float:
        """The delay before retry number `attempts + 1`: doubling, capped."""
        return float(min(self.base_s * (2 ** min(attempts, 16)), self.max_s))


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything the decision looks at besides what was found."""

    policy: RetryPolicy
    attempts: int = 0
    """Consecutive pending or error outcomes before this one."""
    reason: FailureReason | None = None
    age_s: float | None = None
    """How long ago the bytes were last written; None for a committed database row, which
    never heals by itself."""

    @property
    def is_unsettled(self) -> bool:
        return (
            self.reason is not None
            and self.reason.may_be_unsettled
            and self.age_s is not None
            and self.age_s < self.policy.settle_s
        )


Decision = tuple[FileStatus, float | None]
"""The status, and the delay before the pipeline reads the file again (None: no retry of its
own; pending rows are then retried by the reconciler)."""


def _failed(s: Situation) -> Decision:
    if s.is_unsettled and s.age_s is not None:
        # OpenCode rewrites files in place: a reader sees partial bytes until it settles.
        return FileStatus.PENDING, max(
            s.policy.backoff_s(s.attempts), s.policy.settle_s - s.age_s + 0.05
        )
    return FileStatus.ERROR, None


DECISIONS: dict[Found, Callable[[Situation], Decision]] = {
    Found.PARSED: lambda s: (FileStatus.INDEXED, None),
    Found.NOT_A_RECORD: lambda s: (FileStatus.SKIPPED, None),
    Found.GONE: lambda s: (FileStatus.DELETED, None),
    Found.CHANGED_WHILE_READ: lambda s: (FileStatus.PENDING, s.policy.backoff_s(s.attempts)),
    Found.FAILED: _failed,
    Found.STORE_BUSY: lambda s: (FileStatus.PENDING, s.policy.base_s * 4),
    Found.STORE_UNAVAILABLE: lambda s: (FileStatus.PENDING, None),
    Found.HISTORY: lambda s: (FileStatus.SKIPPED, None),
}


def decide(found: Found, situation: Situation) -> Decision:
    """Return the status and retry delay of what a reader found."""
    return DECISIONS[found](situation)


def with_backoff(read: FileRead, attempts: int, policy: RetryPolicy) -> FileRead:
    """Stretch a read's retry delay to the backoff its earlier attempts have earned."""
    if read.retry_in_s is None or not attempts:
        return read
    return replace(read, retry_in_s=max(read.retry_in_s, policy.backoff_s(attempts)))


def next_attempts(before: FileStatus | None, before_attempts: int, status: FileStatus) -> int:
    """Attempts count consecutive pending or error outcomes; anything else resets them."""
    if status not in _RETRYING:
        return 0
    return (before_attempts if before in _RETRYING else 0) + 1


_RETRYING = (FileStatus.PENDING, FileStatus.ERROR)


# --- rows that wait for a retry --------------------------------------------------------------


def needs_retry(status: str, error_message: str | None) -> bool:
    """True for a tracked row whose stamp matches the disk but that must be read again: pending
    (never settled, or its retry did not survive a restart) or a disk error."""
    if status == FileStatus.PENDING:
        return True
    return status == FileStatus.ERROR and (error_message or "").startswith(_RETRIED_PREFIXES)


_RETRIED_PREFIXES = tuple(f"{reason}:" for reason in RETRIED_BY_RECONCILER)


def needs_retry_sql(alias: str, pending_before: str = "TRUE") -> str:
    """`needs_retry` as a SQL condition over file_index `alias`; `pending_before` further limits
    the pending rows (e.g. to those older than a parameter)."""
    errors = " OR ".join(f"{alias}.error_message LIKE '{p}%'" for p in _RETRIED_PREFIXES)
    return (
        f"(({alias}.status = '{FileStatus.PENDING}' AND {pending_before}) "
        f"OR ({alias}.status = '{FileStatus.ERROR}' AND ({errors})))"
    )
