"""Assembles an engine: opens the one IndexWriter, records the storage root, makes OpenCode's stores
(SQLite, legacy JSON trees) into sources, lets the rollout choose the version and build it on them.
Never starts an indexer or reads the environment: the caller starts it, the config says the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from indexer.config import IndexerConfig
from indexer.outcome import BatchResult
from indexer.pipeline.writer import IndexWriter
from indexer.rollout import Choice, Indexer, RolloutState, choose, make_indexer, pipeline_config
from indexer.sources.base import ChangeSource
from indexer.sources.sqlite import discover_databases, make_sources
from indexer.sources.tree import discover_legacy_trees, make_tree_sources
from indexer.store.schema import set_meta

OnBatch = Callable[[BatchResult], None]


@dataclass(frozen=True)
class Engine:
    """The parts of one engine. The writer is running; the indexer is built but not started.
    Whoever assembled it closes the writer."""

    config: IndexerConfig
    writer: IndexWriter
    sources: tuple[ChangeSource, ...]
    choice: Choice
    indexer: Indexer
    watch: bool = True
    bulk: bool = False
    on_batch: OnBatch | None = None

    def build(self, version: str) -> Indexer:
        """Another indexer on this engine's writer and sources (for a live switch)."""
        return build_indexer(
            self.config, version, self.writer, self.sources, self.watch, self.bulk, self.on_batch
        )


def build_indexer(
    config: IndexerConfig,
    version: str,
    writer: IndexWriter,
    sources: tuple[ChangeSource, ...],
    watch: bool,
    bulk: bool,
    on_batch: OnBatch | None,
) -> Indexer:
    return make_indexer(
        version,
        config.paths.storage_root,
        writer=writer,
        watch=watch,
        on_batch=on_batch,
        sources=sources,
        bulk=bulk,
        tunables=config.tunables,
    )


def assemble(
    config: IndexerConfig,
    *,
    state: RolloutState | None = None,
    watch: bool = True,
    bulk: bool = False,
    on_batch: OnBatch | None = None,
) -> Engine:
    """Open the database and build the chosen indexer on it; on any failure the writer is closed.

    OpenCode >= 1.2's SQLite store(s) are --opencode-db, else $OPENCODE_DB, else opencode*.db
    beside the storage folder; older OpenCode's trees are `../project/*/storage` beside it.
    Only v2 reads them (make_indexer leaves them out of v1).
    """
    paths = config.paths
    writer = IndexWriter.open(paths.db_path)
    try:
        writer.run(partial(set_meta, key="storage_root", value=str(paths.storage_root)))
        databases = discover_databases(paths.storage_root, paths.opencode_db, paths.opencode_env)
        processor = pipeline_config(config.tunables).processor
        trees = make_tree_sources(discover_legacy_trees(paths.storage_root), config=processor)
        sqlite = make_sources(databases, paths.storage_root, index=writer.cursor)
        sources: tuple[ChangeSource, ...] = (*sqlite, *trees)
        choice = choose(config.indexer, state or RolloutState(paths.db_path), config.rollout)
        indexer = build_indexer(config, choice.version, writer, sources, watch, bulk, on_batch)
    except BaseException:
        writer.close()
        raise
    return Engine(config, writer, sources, choice, indexer, watch, bulk, on_batch)
