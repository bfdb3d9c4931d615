"""Diffs the disk against file_index and submits every disagreement: new, modified (stamp !=),
deleted, and files due for a retry. Never writes: its reconcile_log row goes through the writer.

Events are hints; this scan is the truth. It runs at start, on an interval, and at once when
the watcher reports an overflow or a dead observer. Folders the watcher cannot watch (the
inotify limit) are polled on their own, every few seconds, until they are watched again.

Memory stays bounded at any tree size: the disk's stamps go into Arrow in chunks, findings are
fetched and submitted in chunks (the accumulator's backpressure paces them), and a report keeps
the counts whole but at most REPORT_PATHS_KEPT paths of each kind.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from indexer.kinds import SOURCE_PREFIX_PATTERN, FileKey, classify
from indexer.listing import STAMPS as _DISK
from indexer.outcome import needs_retry_sql
from indexer.parallel_walk import OnFiles, walk_parallel
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.reconcile_report import ReconcileReport, ReconcilerStats
from indexer.scan import disk_name, walk_stack
from indexer.snapshot import ReconcileSummary
from indexer.sources.base import ChangeSource, owner_of

log = logging.getLogger(__name__)

REPORT_PATHS_KEPT = 10_000
"""A report names at most this many paths of each kind (its counts are always whole)."""
CHUNK_ROWS = 50_000
"""The walk's stamps are gathered in Python this many at a time (whole folders: a chunk may
overshoot)."""
SUBMIT_ROWS = 2_000
"""Findings classified and submitted this many at a time, so the first batches are read and
committed while the rest are classified (a batch under backlog holds up to 2,000 files)."""
PARALLEL_WALK_MIN_FILES = 10_000
"""A tree is walked on walk_threads from this many files (the last scan's count, or the index's
before the first; an empty index's tree counts as big): below it the walk takes a few
milliseconds on one thread, and starting the threads costs ~0.6 ms."""

POLLED_FOLDERS_MAX = 100
"""Past the inotify limit a long history leaves thousands of folders unwatched (250,000 message
folders for a million files): more than this many are polled as the whole tree, one walk and
one diff, not a walk and a filter per folder."""
POLL_COST_SHARE = 10
"""Unwatched folders are polled no sooner than this many times as long as the last poll took:
the whole tree of a million files takes ~2 s to walk."""


@dataclass(frozen=True, slots=True)
class ReconcilerConfig:
    interval_s: float = 30.0
    pending_retry_after_s: float = 5.0
    """Pending rows older than this with no retry in flight are resubmitted (e.g. after a crash)."""
    catch_grace_s: float = 1.0
    """Files modified more recently than this may still be in the events' pipeline."""
    unwatched_poll_s: float = 2.0
    """Folders the watcher cannot watch are diffed this often (no report, no log row)."""
    walk_threads: int = 1
    """Threads that share the walk of a big tree (`indexer.parallel_walk`); 1: the scan's own."""
    parallel_walk_min_files: int = PARALLEL_WALK_MIN_FILES


# One pass over both sides: a full join pairs each file on disk with its row, if any. The first
# WHERE is the cheap test that passes over an unchanged, indexed file; the CASE says what a
# pair that may differ is (NULL: no finding).
_DIFF_SQL = """
SELECT path, what, mtime_ns FROM (
    SELECT coalesce(d.path, f.file_path) AS path, d.mtime_ns, CASE
        WHEN d.path IS NULL THEN
            CASE WHEN f.status != 'deleted' AND ({judged}) THEN 'deleted' END
        WHEN f.file_path IS NULL OR f.status = 'deleted' THEN 'new'
        WHEN f.mtime_ns IS DISTINCT FROM d.mtime_ns OR f.size != least(d.size, 2147483647)
            THEN 'modified'
        WHEN f.mtime_ns = d.mtime_ns AND f.size = least(d.size, 2147483647) AND {retry}
            THEN 'retry'
        END AS what
    FROM _disk d FULL JOIN file_index f ON f.file_path = d.path
    WHERE d.path IS NULL OR f.file_path IS NULL OR f.status IS DISTINCT FROM 'indexed'
       OR f.mtime_ns IS DISTINCT FROM d.mtime_ns OR f.size != least(d.size, 2147483647)
) WHERE what IS NOT NULL
"""


def disk_table(chunks: Iterable[pa.RecordBatch]) -> pa.Table:
    """A walk's chunks of (path, mtime_ns, size) as one Arrow table."""
    return pa.Table.from_batches(chunks, _DISK)


# file_index times are naive UTC; to_timestamp() would compare them in the session's zone.
_RETRY = needs_retry_sql(
    "f", pending_before="f.indexed_at < make_timestamp(CAST(? * 1000000 AS BIGINT))"
)


class _Found:
    """What a scan found, by kind: every one counted, the first REPORT_PATHS_KEPT named."""

    def __init__(self) -> None:
        self.kept: dict[str, list[str]] = {"new": [], "modified": [], "deleted": [], "retry": []}
        self.count = dict.fromkeys(self.kept, 0)

    def add(self, what: str, path: str) -> None:
        self.count[what] += 1
        if self.count[what] <= REPORT_PATHS_KEPT:
            self.kept[what].append(path)

    def totals(self) -> tuple[int, int, int, int] | None:
        """The counts, when some paths were not kept; else None (the paths are the counts)."""
        if all(self.count[k] == len(self.kept[k]) for k in self.kept):
            return None
        return self.count["new"], self.count["modified"], self.count["deleted"], self.count["retry"]


class Reconciler:
    """scan_now() is safe from any thread (scans are serialised); start() runs the interval loop."""

    def __init__(
        self,
        root: Path,
        cursor_factory: Callable[[], duckdb.DuckDBPyConnection],
        submit: Callable[[list[FileKey], Trigger], None],
        in_flight: Callable[[], set[str]],
        config: ReconcilerConfig | None = None,
        on_report: Callable[[ReconcileReport], None] | None = None,
        sources: Sequence[ChangeSource] = (),
        wall: Callable[[], float] = time.time,
        first_scan_id: int = 1,
        first_load: Callable[[Iterable[list[FileKey]], int, Trigger], None] | None = None,
        first_load_soon: OnFiles | None = None,
    ) -> None:
        """first_load, when given, takes the tree's files (and their number) of a first
        catch-up in place of `submit`; it returns when they are committed. first_load_soon is
        called from that catch-up's walk once it has seen so many files (`walk_parallel`)."""
        self.root = root
        self._first_load = first_load
        self._first_load_soon = first_load_soon
        self._cursor_factory = cursor_factory
        self._submit = submit
        self._sources = tuple(sources)
        self._in_flight = in_flight
        self.config = config or ReconcilerConfig()
        self._on_report = on_report
        self._wall = wall
        self._next_scan_id = first_scan_id
        self._scan_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        """A full scan was asked for."""
        self._poll_wake = threading.Event()
        """The loop should look again now (a scan asked for, or the unwatched folders changed)."""
        self._unwatched: tuple[str, ...] = ()
        self._poll_took_s = 0.0
        self._thread: threading.Thread | None = None
        self._stats = ReconcilerStats()
        self._tree_files: int | None = None
        """Files the last full walk saw; None before the first."""
        self.recent: deque[ReconcileReport] = deque(maxlen=20)
        self._stats_lock = threading.Lock()

    def scan_now(self, trigger: Trigger = Trigger.RECONCILER) -> ReconcileReport:
        """Walk the tree, diff it with file_index, and submit every finding now.

        At startup every pending row is retried at once: no retry survived the restart.
        """
        with self._scan_lock:
            started_wall = self._wall()
            t0 = time.perf_counter()
            found = _Found()
            if trigger is Trigger.STARTUP and self._index_is_empty():
                files_seen, catches = self._submit_everything(found, trigger), 0
            else:
                files_seen, catches = self._diff_and_submit(found, trigger, started_wall)
            report = ReconcileReport(
                scan_id=self._next_scan_id,
                started_at=started_wall,
                duration_ms=(time.perf_counter() - t0) * 1000,
                files_seen=files_seen,
                new=tuple(found.kept["new"]),
                modified=tuple(found.kept["modified"]),
                deleted=tuple(found.kept["deleted"]),
                retried=tuple(found.kept["retry"]),
                catches=catches,
                totals=found.totals(),
            )
            self._next_scan_id += 1
        with self._stats_lock:
            s = self._stats
            self._stats = ReconcilerStats(
                s.scans_completed + 1,
                s.files_found_missing + report.findings,
                s.catches + catches,
                report.duration_ms,
                report.started_at,
            )
            self.recent.appendleft(report)
        log.info(
            "reconcile: %d files, %d new, %d modified, %d deleted, %d retried in %.0f ms",
            report.files_seen,
            *report.counts,
            report.duration_ms,
        )
        if self._on_report is not None:
            self._on_report(report)
        return report

    def _diff_and_submit(
        self, found: _Found, trigger: Trigger, started_wall: float
    ) -> tuple[int, int]:
        """Walk the tree, diff it with file_index, submit every finding; (files seen, catches)."""
        disk = self._walk_tree()
        files_seen = disk.num_rows
        # Rows are judged gone only in namespaces seen whole now: the files, and each
        # source that answered (a busy database is not a deleted one).
        judged = [f"NOT regexp_matches(f.file_path, '{SOURCE_PREFIX_PATTERN}')"]
        for source in self._sources:
            stamps = source.stamps()
            if stamps is not None:
                disk = pa.concat_tables([disk, stamps.select(_DISK.names).cast(_DISK)])
                judged.append(f"starts_with(f.file_path, '{source.prefix}')")
        retry_after_s = 0.0 if trigger is Trigger.STARTUP else self.config.pending_retry_after_s
        fresh_after_ns = int((started_wall - self.config.catch_grace_s) * 1e9)
        # A source's fast path sees rows stamped after its cursor: a row stamped before the
        # last scan (a fork's copies) or deleted reaches the index only through this scan.
        last = self._stats.last_scan_at
        stamped_after_ns = int(last * 1e9) if last is not None else None
        catches = 0
        cursor = self._cursor_factory()
        try:
            # Taken before the diff as well as after it: a file committed while the diff
            # ran was in flight, not missed.
            in_flight = self._in_flight()
            result = self._diff(cursor, disk, " OR ".join(judged), started_wall - retry_after_s)
            in_flight |= self._in_flight()
            del disk
            while rows := result.fetchmany(SUBMIT_ROWS):
                keys: list[FileKey] = []
                for path, what, mtime_ns in rows:
                    owner, key = self._owned_key(path)
                    if key is None:
                        continue
                    found.add(what, path)
                    keys.append(key)
                    # At start no event could have brought anything: no catches then.
                    missed = trigger is not Trigger.STARTUP and path not in in_flight
                    if owner is not None:
                        seen = stamped_after_ns is not None and (mtime_ns or 0) >= stamped_after_ns
                        missed = missed and what != "deleted" and seen
                    if what != "retry" and missed and (mtime_ns or 0) < fresh_after_ns:
                        catches += 1
                del rows
                self._submit(keys, trigger)  # waits while the writer is far behind
        finally:
            cursor.close()
        return files_seen, catches

    def _index_is_empty(self) -> bool:
        return not self._query_one("SELECT EXISTS (SELECT 1 FROM file_index)")

    def _query_one(self, sql: str) -> object:
        cursor = self._cursor_factory()
        try:
            row = cursor.execute(sql).fetchone()
        finally:
            cursor.close()
        return row[0] if row else None

    def _walk_tree(self, on_files: OnFiles | None = None, stamps: bool = True) -> pa.Table:
        """The tree's stamps (stamps=False: its paths; the stamps may be null), walked on
        config.walk_threads when the tree is big."""
        if self._tree_files is None and self.config.walk_threads > 1:
            counted = self._query_one("SELECT count(*) FROM file_index")
            # An empty index says nothing of the tree's size: a first catch-up is walked shared.
            self._tree_files = counted if isinstance(counted, int) and counted else None
        big = self._tree_files is None or self._tree_files >= self.config.parallel_walk_min_files
        threads = self.config.walk_threads if big else 1
        disk = disk_table(walk_parallel(self.root, True, CHUNK_ROWS, threads, on_files, stamps))
        self._tree_files = disk.num_rows
        return disk

    def _submit_everything(self, found: _Found, trigger: Trigger) -> int:
        """A first catch-up (the index is empty): every file is new, so no diff is needed; the
        walk's paths are submitted SUBMIT_ROWS at a time (the tree's to first_load, when
        given). Returns the files seen."""
        # The walk finishes before anything is submitted: interleaved with reading, its million
        # lstat calls each hand the GIL over (14% slower at 1M files, docs/benchmarks.md).
        # Only the paths: every file is read, and its read stamps it.
        disk = self._walk_tree(
            self._first_load_soon if self._first_load is not None else None, stamps=False
        )
        tables = [disk, *(s for s in (src.stamps() for src in self._sources) if s is not None)]
        for table in tables:  # a busy store (no stamps) is read by the next scan
            chunks = (
                self._new_keys(found, batch.column(0).to_pylist())
                for batch in table.select(["path"]).to_batches(max_chunksize=SUBMIT_ROWS)
            )
            if table is disk and self._first_load is not None:
                self._first_load(chunks, disk.num_rows, trigger)
            else:
                for keys in chunks:
                    self._submit(keys, trigger)
        return int(sum(table.num_rows for table in tables))

    def _new_keys(self, found: _Found, paths: Iterable[str]) -> list[FileKey]:
        keys: list[FileKey] = []
        for path in paths:
            _, key = self._owned_key(path)
            if key is not None:
                found.add("new", path)
                keys.append(key)
        return keys

    def _owned_key(self, path: str) -> tuple[ChangeSource | None, FileKey | None]:
        """The source that owns a stored path (None: a file of the tree) and the path's key."""
        owner = owner_of(path, self._sources)
        return owner, owner.key_for(path) if owner is not None else classify(path)

    @staticmethod
    def _diff(
        cursor: duckdb.DuckDBPyConnection, disk: pa.Table, judged: str, pending_before: float
    ) -> duckdb.DuckDBPyConnection:
        """The disagreements between `disk` and file_index, streamed: fetch them from the cursor
        returned, which holds `disk` until closed. Deletions only where `judged`."""
        cursor.register("_disk", disk)
        return cursor.execute(_DIFF_SQL.format(judged=judged, retry=_RETRY), [pending_before])

    def poll_folders(self, folders: Sequence[str]) -> int:
        """Diff only these folders (stored paths; "" is the whole tree of files) and submit what
        differs, without a report: the watcher cannot watch them. Returns the files submitted."""
        tops = [f for f in folders if not any(f.startswith(o + "/") for o in folders if o != f)]
        with self._scan_lock:
            stack = [
                (
                    os.fspath(self.root / (disk_name(folder) or folder)),
                    f"{folder}/" if folder else "",
                )
                for folder in tops
            ]
            disk = disk_table(walk_stack(stack, links=True, chunk_rows=CHUNK_ROWS))
            under = " OR ".join(
                "starts_with(f.file_path, '{}')".format(f"{f}/".replace("'", "''")) if f else "TRUE"
                for f in tops
            )
            judged = f"NOT regexp_matches(f.file_path, '{SOURCE_PREFIX_PATTERN}') AND ({under})"
            cursor = self._cursor_factory()
            try:
                result = self._diff(
                    cursor, disk, judged, self._wall() - self.config.pending_retry_after_s
                )
                # Retries are the full scan's: a disk error is not read again every few seconds.
                found = (classify(path) for path, what, _ in result.fetchall() if what != "retry")
                keys = [key for key in found if key is not None]
            finally:
                cursor.close()
            self._submit(keys, Trigger.RECONCILER)
        if keys:
            log.debug("polled %d unwatched folder(s): %d files submitted", len(tops), len(keys))
        return len(keys)

    def set_unwatched(self, folders: tuple[str, ...]) -> None:
        """The folders the watcher cannot watch now (stored paths, "" for the root): the loop
        polls them every unwatched_poll_s until this is called with none (more than
        POLLED_FOLDERS_MAX: the whole tree, and no more often than POLL_COST_SHARE times what
        the last poll took)."""
        self._unwatched = folders if len(folders) <= POLLED_FOLDERS_MAX else ("",)
        self._poll_wake.set()

    def request_scan(self) -> None:
        """Ask the loop for a scan as soon as possible (overflow, dead observer, key press)."""
        self._wake.set()
        self._poll_wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ocindex-reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop; returns within timeout_s (a scan in progress finishes first)."""
        self._stop.set()
        self._poll_wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def get_stats(self) -> ReconcilerStats:
        return self._stats

    def summaries(self, limit: int = 10) -> list[ReconcileSummary]:
        """The last scans' reports, newest first."""
        with self._stats_lock:
            reports = list(self.recent)[:limit]
        return [report.summary() for report in reports]

    def _loop(self) -> None:
        next_scan = time.monotonic() + self.config.interval_s
        while not self._stop.is_set():
            wait_s = next_scan - time.monotonic()
            if self._unwatched:
                poll_s = max(self.config.unwatched_poll_s, POLL_COST_SHARE * self._poll_took_s)
                wait_s = min(wait_s, poll_s)
            self._poll_wake.wait(max(wait_s, 0.0))
            self._poll_wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._wake.is_set() or time.monotonic() >= next_scan:
                    self._wake.clear()
                    next_scan = time.monotonic() + self.config.interval_s
                    self.scan_now()
                elif self._unwatched:
                    started = time.monotonic()
                    self.poll_folders(self._unwatched)
                    self._poll_took_s = time.monotonic() - started
            except Exception:  # a failed scan must not end the loop; the next one retries
                log.exception("reconcile scan failed")
