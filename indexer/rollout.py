"""Which indexer runs, and why: the feature flag, the percentage rollout with a stable per-install
cohort, and the persisted rollback. Never indexes a file itself; the one place that builds v1.

Precedence: --indexer, then UNIFIED_INDEXER_V2_ENABLED, then a rollout persisted beside the
database (set by set_rollout or rollback), then UNIFIED_INDEXER_V2_ROLLOUT, then DEFAULT_ROLLOUT
(100%: v2).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from indexer.config import (
    DEFAULT_ROLLOUT,
    VERSIONS,
    ConfigError,
    Rollout,
    Tunables,
    cores,
    process_env,
)
from indexer.config import ENV_ENABLED as ENV_ENABLED
from indexer.config import ENV_ROLLOUT as ENV_ROLLOUT
from indexer.config import parse_rollout as parse_rollout
from indexer.facade import IndexerStats
from indexer.kinds import FileKey
from indexer.outcome import BatchResult
from indexer.pipeline.accumulator import AccumulatorConfig, PendingEntry, Trigger
from indexer.pipeline.read_pool import PoolConfig
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.pipeline.writer import IndexWriter
from indexer.snapshot import BatchSummary, ErrorFile, PendingFile, ReconcileSummary
from indexer.sources.base import ChangeSource
from indexer.store.database import OWNER_ONLY, DatabaseError, keep_private, make_folder

BULK_BATCH_FILES = 5000
"""A one-shot catch-up's bound under backlog (Tunables.for_bulk): a store's records, or a tree
that is not loaded in bulk. `ocindex index` with OCINDEX_FIRST_LOAD=0 on 20,106 files,
alternated (2026-12-03): 1.31-1.52 s at 2000, 1.19-1.42 s at 5000."""


class ScanReport(Protocol):
    """What a rescan reports, whichever indexer ran it (v2 reconciles, v1 re-runs its bulk)."""

    @property
    def findings(self) -> int:
        """Files that disagreed with file_index."""
        ...


class Indexer(Protocol):
    """What an indexer offers the engine (both implement it; IndexerReads holds the shared reads).
    start() and stop() from one controlling thread; every other member is safe from any."""

    version: str
    root: Path
    running: bool

    def start(self, handover: Iterable[PendingEntry] = ()) -> None: ...
    def stop(self, flush: bool = True, close: bool = True) -> list[PendingEntry]: ...
    def interrupt(self) -> None:
        """Have start() end soon, its catch-up left to the next start; sets flags only."""
        ...

    def flush(self) -> None: ...
    def rescan(self) -> ScanReport | None: ...
    def submit(self, keys: list[FileKey], trigger: Trigger = Trigger.MANUAL) -> None: ...
    def stats(self) -> IndexerStats: ...
    def pending_files(self, limit: int = 100) -> list[PendingFile]: ...
    def recent_batches(self, limit: int = 100) -> list[BatchSummary]: ...
    def reconciler_findings(self, limit: int = 10) -> list[ReconcileSummary]: ...
    def error_files(self, limit: int = 100) -> list[ErrorFile]: ...
    def cursor(self) -> duckdb.DuckDBPyConnection: ...
    def is_idle(self, settle_s: float = 0.0) -> bool: ...
    def wait_idle(self, timeout_s: float = 30.0, settle_s: float = 0.0) -> bool: ...


def make_indexer(
    version: str,
    root: Path,
    *,
    db_path: Path | None = None,
    writer: IndexWriter | None = None,
    watch: bool = True,
    on_batch: Callable[[BatchResult], None] | None = None,
    sources: Sequence[ChangeSource] = (),
    bulk: bool = False,
    tunables: Tunables | None = None,
) -> Indexer:
    """Build (not start) the named indexer on a database path or a running writer.

    Only v2 reads the extra sources (OpenCode's SQLite store); v1 indexes the JSON tree alone.
    With bulk (a one-shot catch-up), v2 grows batches up to BULK_BATCH_FILES while a backlog
    exists, unless OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG says otherwise. Without tunables, the
    process environment's apply.
    """
    tunables = Tunables.from_env(process_env()) if tunables is None else tunables
    if version == "v1":
        from indexer.legacy.v1 import HybridIndexer, V1Config

        # Both indexers classify files with the same processor settings: parity depends on it.
        processor = pipeline_config(tunables).processor
        return HybridIndexer(
            root,
            db_path=db_path,
            writer=writer,
            config=V1Config(watch=watch, processor=processor),
            on_batch=on_batch,
        )
    if version == "v2":
        if bulk:
            tunables = tunables.for_bulk(BULK_BATCH_FILES, cores())
        return UnifiedIndexerV2(
            root,
            db_path=db_path,
            writer=writer,
            config=pipeline_config(tunables, watch=watch),
            on_batch=on_batch,
            sources=sources,
        )
    raise ValueError(f"unknown indexer {version!r}; choose v1 or v2")


def pipeline_config(tunables: Tunables, watch: bool = True) -> V2Config:
    """v2's accumulator, processor and reconciler settings from the tunables."""
    backlog = tunables.backlog_batch_files
    return V2Config(
        accumulator=AccumulatorConfig(
            window_ms=tunables.window_ms,
            idle_ms=tunables.idle_seal_ms,
            max_files=tunables.max_batch_files,
            max_files_under_backlog=backlog or None,
        ),
        processor=ProcessorConfig(
            max_file_bytes=tunables.max_file_bytes, settle_s=tunables.settle_s
        ),
        reconciler=ReconcilerConfig(
            interval_s=tunables.reconcile_interval_s,
            walk_threads=tunables.walk_threads or cores(),
        ),
        pool=PoolConfig(
            workers=tunables.read_workers or 0,
            files=bool(tunables.read_files_on_workers),
            # One per core unless the variable says otherwise, `ocindex run` too.
            first_load_workers=cores() if tunables.read_workers is None else tunables.read_workers,
        ),
        watch=watch,
        watch_process=bool(tunables.watcher_process),
        first_load=bool(tunables.first_load),
    )


def bucket_of(install_id: str) -> int:
    """The install's stable cohort bucket, 0-99."""
    return int(hashlib.sha256(install_id.encode()).hexdigest(), 16) % 100


def in_cohort(install_id: str, percent: int) -> bool:
    return bucket_of(install_id) < percent


@dataclass(frozen=True, slots=True)
class Choice:
    version: str
    reason: str
    rollout_percent: int


class RolloutState:
    """The install id, the persisted rollout and the last active version, in a small JSON file
    beside the database (readable while another process holds the database), owner-only like
    the database. A state opened with writable=False never writes (`ocindex status`)."""

    def __init__(self, db_path: Path, writable: bool = True) -> None:
        self.path = db_path.with_name(db_path.name + ".rollout.json")
        self.writable = writable
        if writable:
            keep_private(self.path)  # one left open to every user by an older version

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        except OSError as exc:
            raise DatabaseError(f"cannot read {self.path}: {exc.strerror}") from None
        return data if isinstance(data, dict) else {}

    def save(self, **changes: Any) -> dict[str, Any]:
        """Merge changes into the file, atomically; a file that cannot be written is one
        DatabaseError naming it."""
        if not self.writable:
            raise DatabaseError(f"{self.path} was opened read-only")
        data = self.load()
        data.update(changes, updated_at=time.time())
        make_folder(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            try:
                mode = stat.S_IMODE(self.path.stat().st_mode)
            except FileNotFoundError:
                mode = OWNER_ONLY
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY)
            with os.fdopen(fd, "w") as out:
                os.fchmod(fd, mode)  # the mode the file had (owner-only when new)
                out.write(json.dumps(data, indent=2))
            os.replace(tmp, self.path)  # atomic: a reader sees the old file or the new one
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DatabaseError(
                f"cannot write {self.path}: {exc.strerror}; ocindex keeps it beside the "
                "database, so that folder must be writable (or pass another --db)"
            ) from None
        return data

    def saved_install_id(self) -> str | None:
        found = self.load().get("install_id")
        return str(found) if found else None

    def install_id(self) -> str:
        """The install id, drawn and saved on first use."""
        found = self.saved_install_id()
        if found is None:
            found = str(self.save(install_id=uuid.uuid4().hex)["install_id"])
        return found

    def persisted_rollout(self) -> int | None:
        value = self.load().get("rollout_percent")
        return None if value is None else parse_rollout(value)


def choose_version(
    cli_choice: str | None,
    state: RolloutState,
    env: Mapping[str, str] | None = None,
) -> Choice:
    """Decide which indexer runs and say why, from the variables in env (default: the process's)."""
    return choose(cli_choice, state, Rollout.from_env(process_env() if env is None else env))


def choose(cli_choice: str | None, state: RolloutState, rollout: Rollout) -> Choice:
    """Decide which indexer runs and say why: --indexer, the flag, the persisted rollout, the
    rollout variable, DEFAULT_ROLLOUT."""
    install_id = state.install_id() if state.writable else state.saved_install_id()
    persisted = state.persisted_rollout()
    if persisted is not None:
        percent, source = persisted, "persisted rollout"
    elif rollout.percent is not None:
        percent, source = rollout.percent, f"{ENV_ROLLOUT}={rollout.percent_text}"
    else:
        percent, source = DEFAULT_ROLLOUT, "default rollout"
    if cli_choice:
        if cli_choice not in VERSIONS:
            raise ConfigError(f"unknown indexer {cli_choice!r}; choose v1 or v2")
        return Choice(cli_choice, f"--indexer {cli_choice}", percent)
    if rollout.enabled is not None:
        version = "v2" if rollout.enabled else "v1"
        return Choice(version, f"{ENV_ENABLED}={rollout.enabled_text}", percent)
    if install_id is None:  # read-only, and no start has drawn the install's id yet
        version = "v2" if percent >= 100 else "v1"
        return Choice(
            version, f"{source} {percent}%: no install id yet (the next start draws one)", percent
        )
    bucket = bucket_of(install_id)
    version = "v2" if bucket < percent else "v1"
    relation = "<" if version == "v2" else ">="
    return Choice(
        version, f"{source} {percent}%: install bucket {bucket} {relation} {percent}", percent
    )
