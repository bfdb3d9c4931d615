"""assemble(): the one place an engine is put together from a configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer import engine as engine_module
from indexer.config import ConfigError, Flags, IndexerConfig
from indexer.pipeline.writer import IndexWriter
from indexer.rollout import RolloutState
from indexer.simulate import SqliteSimulator
from indexer.store.schema import get_meta


def config_for(root: Path, db: Path, indexer: str | None = None) -> IndexerConfig:
    return IndexerConfig.load(Flags(storage=root, db=db, indexer=indexer), {})


def test_assemble_records_the_root_and_builds_the_chosen_version_unstarted(
    storage_root: Path, db_path: Path
) -> None:
    engine = engine_module.assemble(config_for(storage_root, db_path, "v1"), watch=False)
    try:
        assert engine.choice.reason == "--indexer v1"
        assert engine.indexer.version == "v1" and not engine.indexer.running
        assert engine.sources == ()
        stored = engine.writer.run(lambda conn: get_meta(conn, "storage_root"), writes=False)
        assert stored == str(storage_root)
        other = engine.build("v2")
        assert other.version == "v2" and not other.running
    finally:
        engine.writer.close()


def test_assemble_finds_opencodes_store_beside_the_storage(tmp_path: Path) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    with SqliteSimulator(root, seed=1) as sim:
        sim.write_sessions(1)
    engine = engine_module.assemble(config_for(root, db, "v2"), watch=False)
    try:
        assert [s.db_path for s in engine.sources] == [tmp_path / "opencode.db"]
    finally:
        engine.writer.close()


@pytest.mark.parametrize(
    ("env", "version", "reason"),
    [
        ({"UNIFIED_INDEXER_V2_ROLLOUT": "100"}, "v2", "UNIFIED_INDEXER_V2_ROLLOUT=100 100%"),
        ({"UNIFIED_INDEXER_V2_ROLLOUT": "0"}, "v1", "UNIFIED_INDEXER_V2_ROLLOUT=0 0%"),
        ({}, "v2", "default rollout 100%"),
    ],
    ids=["rollout-100", "rollout-0", "fresh-install"],
)
def test_assemble_follows_the_rollout_when_no_version_is_forced(
    storage_root: Path, db_path: Path, env: dict[str, str], version: str, reason: str
) -> None:
    config = IndexerConfig.load(Flags(storage=storage_root, db=db_path), env)
    engine = engine_module.assemble(config, state=RolloutState(db_path), watch=False)
    try:
        assert engine.choice.version == version and engine.indexer.version == version
        assert engine.choice.reason.startswith(reason)
    finally:
        engine.writer.close()


def test_assemble_closes_the_writer_when_the_choice_fails(
    storage_root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[IndexWriter] = []
    real_open = IndexWriter.open

    def spy(path: Path | str) -> IndexWriter:
        opened.append(real_open(path))
        return opened[-1]

    monkeypatch.setattr(engine_module.IndexWriter, "open", spy)
    state = db_path.with_name(db_path.name + ".rollout.json")
    state.write_text(json.dumps({"install_id": "x", "rollout_percent": "lots"}))
    with pytest.raises(ConfigError, match="rollout 'lots' is not a number"):
        engine_module.assemble(config_for(storage_root, db_path))
    assert len(opened) == 1 and opened[0].is_closed
