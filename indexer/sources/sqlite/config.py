"""The SQLite source's settings: overlap, poll pacing, tail bounds, retry and chunk sizes.
Never read from the environment here: the caller builds the config and passes it in."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.records import DEFAULT_MAX_FILE_BYTES


@dataclass(frozen=True, slots=True)
class SqliteSourceConfig:
    overlap_ms: int = 2_000
    """The fast path re-asks for rows this much older than its cursor (equal timestamps, and
    transactions that committed a little after the clock they stamped)."""
    poll_interval_s: float = 1.0
    """A poll even without a file event (events on some filesystems never come)."""
    min_poll_gap_s: float = 0.05
    """At most one poll per this long while events keep coming."""
    tail_rows: int = 10_000
    """At most this many newest rows of message and part are scanned per poll..."""
    tail_horizon_s: float = 600.0
    """...and of those, only the rows inserted in the last this long (our clock). Older rows
    updated in place are found by the reconciler."""
    busy_timeout_ms: int = 100
    retry_base_s: float = 0.1
    retry_max_s: float = 5.0
    max_record_bytes: int = DEFAULT_MAX_FILE_BYTES
    chunk_ids: int = 500
    """Ids per `IN (...)` query."""
    chunk_rows: int = 20_000
    """Rows per query of a full scan: each chunk is its own short read transaction."""
