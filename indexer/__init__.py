"""ocindex's headless indexer: OpenCode storage into DuckDB, in micro-batches, missing nothing.
Never imports Textual or the tui package, and imports nothing eagerly: each public name below
loads its module on first use, so `import indexer.kinds` stays free of DuckDB and watchdog.

The public surface (docs/api.md describes each):
- the engine: `IndexerConfig`, `Flags`, `assemble`, `Engine`, `IndexerService`, `open_service`;
- the facades: `IndexerFacade` (what the dashboard calls), `Indexer` (what an indexer offers),
  `make_indexer`, `IndexWriter`;
- the values: `IndexerSnapshot`, `ActionResult`, `Comparison`, `IndexerStats`, `BatchResult`,
  `FileRead`, `FileStatus`, `FailureReason`;
- the record kinds: `FileKind`, `FileKey`, `KINDS`, `TABLES`, `classify`, `parse`;
- the simulator: `OpenCodeSimulator`, `SqliteSimulator`;
- reading the index, live or idle: `query`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.config import Flags, IndexerConfig
    from indexer.engine import Engine, assemble
    from indexer.facade import IndexerStats
    from indexer.kinds import KINDS, TABLES, FileKey, FileKind, classify
    from indexer.live.client import query
    from indexer.outcome import BatchResult, FailureReason, FileRead, FileStatus
    from indexer.pipeline.writer import IndexWriter
    from indexer.records import parse
    from indexer.rollout import Indexer, make_indexer
    from indexer.service import IndexerService, open_service
    from indexer.simulate import OpenCodeSimulator, SqliteSimulator
    from indexer.snapshot import ActionResult, Comparison, IndexerFacade, IndexerSnapshot

_HOME: dict[str, str] = {
    "Flags": "indexer.config",
    "IndexerConfig": "indexer.config",
    "Engine": "indexer.engine",
    "assemble": "indexer.engine",
    "IndexerStats": "indexer.facade",
    "KINDS": "indexer.kinds",
    "TABLES": "indexer.kinds",
    "FileKey": "indexer.kinds",
    "FileKind": "indexer.kinds",
    "classify": "indexer.kinds",
    "BatchResult": "indexer.outcome",
    "FailureReason": "indexer.outcome",
    "FileRead": "indexer.outcome",
    "FileStatus": "indexer.outcome",
    "IndexWriter": "indexer.pipeline.writer",
    "query": "indexer.live.client",
    "parse": "indexer.records",
    "Indexer": "indexer.rollout",
    "make_indexer": "indexer.rollout",
    "IndexerService": "indexer.service",
    "open_service": "indexer.service",
    "OpenCodeSimulator": "indexer.simulate",
    "SqliteSimulator": "indexer.simulate",
    "ActionResult": "indexer.snapshot",
    "Comparison": "indexer.snapshot",
    "IndexerFacade": "indexer.snapshot",
    "IndexerSnapshot": "indexer.snapshot",
}

__all__ = [
    "KINDS",
    "TABLES",
    "ActionResult",
    "BatchResult",
    "Comparison",
    "Engine",
    "FailureReason",
    "FileKey",
    "FileKind",
    "FileRead",
    "FileStatus",
    "Flags",
    "IndexWriter",
    "Indexer",
    "IndexerConfig",
    "IndexerFacade",
    "IndexerService",
    "IndexerSnapshot",
    "IndexerStats",
    "OpenCodeSimulator",
    "SqliteSimulator",
    "assemble",
    "classify",
    "make_indexer",
    "open_service",
    "parse",
    "query",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'indexer' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
