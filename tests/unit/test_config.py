from __future__ import annotations

from pathlib import Path

import pytest

from indexer.config import ConfigError, default_db_path
from indexer.pipeline.v2 import V2Config


def test_tunables_come_from_the_environment() -> None:
    config = V2Config.from_env(
        {
            "OCINDEX_WINDOW_MS": "50",
            "OCINDEX_MAX_BATCH_FILES": "300",
            "OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "1000",
            "OCINDEX_RECONCILE_INTERVAL_S": "5",
            "OCINDEX_SETTLE_S": "0.5",
            "OCINDEX_MAX_FILE_BYTES": "1024",
        }
    )
    assert (config.accumulator.window_ms, config.accumulator.max_files) == (50, 300)
    assert config.accumulator.max_files_under_backlog == 1000
    assert config.reconciler.interval_s == 5
    assert (config.processor.settle_s, config.processor.max_file_bytes) == (0.5, 1024)


def test_defaults_are_the_plans() -> None:
    config = V2Config.from_env({})
    assert (config.accumulator.window_ms, config.accumulator.max_files) == (200, 100)
    assert config.accumulator.max_files_under_backlog is None
    assert config.reconciler.interval_s == 30


@pytest.mark.parametrize(
    ("name", "value"), [("OCINDEX_WINDOW_MS", "soon"), ("OCINDEX_MAX_BATCH_FILES", "0")]
)
def test_nonsense_is_a_clear_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        V2Config.from_env({name: value})


def test_the_default_db_path_follows_xdg_data_home_unless_ocindex_db_names_one(
    tmp_path: Path,
) -> None:
    assert (
        default_db_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "ocindex" / "index.duckdb"
    )
    assert default_db_path({"OCINDEX_DB": str(tmp_path / "x.duckdb")}) == tmp_path / "x.duckdb"
