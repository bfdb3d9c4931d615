"""Which indexer runs, and why: the feature flag, the percentage rollout with a stable per-install
cohort, and the persisted rollback. Never indexes a file itself; the one place that builds v1.

Precedence: --indexer, then UNIFIED_INDEXER_V2_ENABLED, then a rollout persisted beside the
database (set by set_rollout or rollback), then UNIFIED_INDEXER_V2_ROLLOUT, then 0%.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from indexer.facade import IndexerStats
from indexer.kinds import FileKey
from indexer.outcome import BatchResult
from indexer.pipeline.accumulator import PendingEntry, Trigger
from indexer.pipeline.writer import IndexWriter
from indexer.snapshot import BatchSummary, ErrorFile, PendingFile, ReconcileSummary
from indexer.sources.base import ChangeSource

ENV_ENABLED = "UNIFIED_INDEXER_V2_ENABLED"
ENV_ROLLOUT = "UNIFIED_INDEXER_V2_ROLLOUT"
BACKLOG_ENV = "OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG"
BULK_BATCH_FILES = 2000
VERSIONS = ("v1", "v2")


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
) -> Indexer:
    """Build (not start) the named indexer on a database path or a running writer.

    Only v2 reads the extra sources (OpenCode's SQLite store); v1 indexes the JSON tree alone.
    With bulk (a one-shot catch-up), v2 grows batches up to BULK_BATCH_FILES while a backlog
    exists, unless OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG says otherwise.
    """
    from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config

    if version == "v1":
        from indexer.legacy.v1 import HybridIndexer, V1Config

        # Both indexers classify files with the same processor settings: parity depends on it.
        processor = V2Config.from_env().processor
        return HybridIndexer(
            root,
            db_path=db_path,
            writer=writer,
            config=V1Config(watch=watch, processor=processor),
            on_batch=on_batch,
        )
    if version == "v2":
        return UnifiedIndexerV2(
            root,
            db_path=db_path,
            writer=writer,
            config=V2Config.from_env(
                {BACKLOG_ENV: str(BULK_BATCH_FILES), **os.environ} if bulk else None, watch=watch
            ),
            on_batch=on_batch,
            sources=sources,
        )
    raise ValueError(f"unknown indexer {version!r}; choose v1 or v2")


def parse_rollout(value: str | float | int) -> int:
    """Return a rollout as a whole percent; accepts 0-100 or, written with a point, 0.0-1.0."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"rollout {text!r} is not a number (use 0-100 or 0.0-1.0)") from None
    if "." in text and 0.0 <= number <= 1.0:
        number *= 100
    if not 0 <= number <= 100:
        raise ValueError(f"rollout {text!r} is outside 0-100 (or 0.0-1.0)")
    return round(number)


def parse_flag(value: str) -> bool | None:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    if text == "":
        return None
    raise ValueError(f"{ENV_ENABLED}={value!r} is not true or false")


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
    beside the database (readable while another process holds the database)."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".rollout.json")

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, **changes: Any) -> dict[str, Any]:
        data = self.load()
        data.update(changes, updated_at=time.time())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.path)  # atomic: a reader sees the old file or the new one
        return data

    def install_id(self) -> str:
        data = self.load()
        if not data.get("install_id"):
            data = self.save(install_id=uuid.uuid4().hex)
        return str(data["install_id"])

    def persisted_rollout(self) -> int | None:
        value = self.load().get("rollout_percent")
        return None if value is None else parse_rollout(value)


def choose_version(
    cli_choice: str | None,
    state: RolloutState,
    env: Mapping[str, str] | None = None,
) -> Choice:
    """Decide which indexer runs and say why."""
    env = os.environ if env is None else env
    install_id = state.install_id()
    persisted = state.persisted_rollout()
    env_rollout = env.get(ENV_ROLLOUT, "").strip()
    if persisted is not None:
        percent, source = persisted, "persisted rollout"
    elif env_rollout:
        percent, source = parse_rollout(env_rollout), f"{ENV_ROLLOUT}={env_rollout}"
    else:
        percent, source = 0, "default rollout"
    if cli_choice:
        if cli_choice not in VERSIONS:
            raise ValueError(f"unknown indexer {cli_choice!r}; choose v1 or v2")
        return Choice(cli_choice, f"--indexer {cli_choice}", percent)
    flag = parse_flag(env.get(ENV_ENABLED, ""))
    if flag is not None:
        version = "v2" if flag else "v1"
        return Choice(version, f"{ENV_ENABLED}={env[ENV_ENABLED]}", percent)
    bucket = bucket_of(install_id)
    version = "v2" if bucket < percent else "v1"
    relation = "<" if version == "v2" else ">="
    return Choice(
        version, f"{source} {percent}%: install bucket {bucket} {relation} {percent}", percent
    )
