"""The configuration tree: built once from flags and the environment, frozen, validated with one
line that names the variable, and the only reader of the process environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from indexer.config import (
    MAX_FILE_BYTES,
    Alerts,
    ConfigError,
    Flags,
    IndexerConfig,
    Paths,
    Rollout,
    Tunables,
    default_db_path,
    temp_dir,
)
from indexer.metrics import AlertThresholds
from indexer.pipeline.v2 import V2Config
from indexer.records import DEFAULT_MAX_FILE_BYTES
from indexer.rollout import pipeline_config
from indexer.service import service_config

INDEXER = Path(__file__).resolve().parents[2] / "indexer"


def test_tunables_come_from_the_environment() -> None:
    config = pipeline_config(
        Tunables.from_env(
            {
                "OCINDEX_WINDOW_MS": "50",
                "OCINDEX_MAX_BATCH_FILES": "300",
                "OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "1000",
                "OCINDEX_RECONCILE_INTERVAL_S": "5",
                "OCINDEX_SETTLE_S": "0.5",
                "OCINDEX_MAX_FILE_BYTES": "1024",
            }
        )
    )
    assert (config.accumulator.window_ms, config.accumulator.max_files) == (50, 300)
    assert config.accumulator.max_files_under_backlog == 1000
    assert config.reconciler.interval_s == 5
    assert (config.processor.settle_s, config.processor.max_file_bytes) == (0.5, 1024)


def test_defaults_are_the_plans() -> None:
    config = pipeline_config(Tunables.from_env({}))
    assert (config.accumulator.window_ms, config.accumulator.max_files) == (200, 100)
    assert config.accumulator.max_files_under_backlog is None
    assert config.reconciler.interval_s == 30


def test_defaults_agree_with_the_pipeline_and_the_dashboard() -> None:
    assert pipeline_config(Tunables()) == V2Config()
    assert AlertThresholds.from_env({}) == AlertThresholds()
    assert MAX_FILE_BYTES == DEFAULT_MAX_FILE_BYTES


@pytest.mark.parametrize(
    ("name", "value"), [("OCINDEX_WINDOW_MS", "soon"), ("OCINDEX_MAX_BATCH_FILES", "0")]
)
def test_nonsense_is_a_clear_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        pipeline_config(Tunables.from_env({name: value}))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OCINDEX_WINDOW_MS", "soon"),
        ("OCINDEX_MAX_BATCH_FILES", "0"),
        ("OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG", "many"),
        ("OCINDEX_MAX_FILE_BYTES", "0"),
        ("OCINDEX_SETTLE_S", "-1"),
        ("OCINDEX_RECONCILE_INTERVAL_S", "0.01"),
        ("OCINDEX_ALERT_ERROR_RATE", "high"),
        ("OCINDEX_ALERT_P95_MS", "-5"),
        ("OCINDEX_ALERT_MIN_FILES", "2.5"),
        ("UNIFIED_INDEXER_V2_ENABLED", "maybe"),
        ("UNIFIED_INDEXER_V2_ROLLOUT", "half"),
        ("UNIFIED_INDEXER_V2_ROLLOUT", "101"),
    ],
)
def test_every_bad_variable_is_one_line_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        IndexerConfig.load(Flags(), {name: value})
    assert "\n" not in str(caught.value) and repr(value) in str(caught.value)


def test_an_unknown_indexer_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown indexer 'v3'"):
        IndexerConfig.load(Flags(indexer="v3"), {})


def test_the_database_defaults_to_ocindex_db_then_the_data_home(tmp_path: Path) -> None:
    assert (
        default_db_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "ocindex" / "index.duckdb"
    )
    assert default_db_path({"OCINDEX_DB": str(tmp_path / "x.duckdb")}) == tmp_path / "x.duckdb"


def test_flags_win_over_the_environment_which_wins_over_the_defaults(tmp_path: Path) -> None:
    env = {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "OCINDEX_STORAGE": str(tmp_path / "env-storage"),
        "OCINDEX_DB": str(tmp_path / "env.duckdb"),
        "OPENCODE_DB": "custom.db",
    }
    flags = Flags(
        storage=tmp_path / "flag-storage",
        db=tmp_path / "flag.duckdb",
        indexer="v1",
        opencode_db=tmp_path / "flag.db",
    )
    paths = IndexerConfig.load(flags, env).paths
    assert (paths.storage_root, paths.storage_source) == (tmp_path / "flag-storage", "--storage")
    assert (paths.db_path, paths.opencode_db) == (tmp_path / "flag.duckdb", tmp_path / "flag.db")
    paths = IndexerConfig.load(Flags(), env).paths
    assert (paths.storage_root, paths.storage_source) == (
        tmp_path / "env-storage",
        "$OCINDEX_STORAGE",
    )
    assert (paths.db_path, paths.opencode_db) == (tmp_path / "env.duckdb", None)
    assert paths.opencode_env == {"OPENCODE_DB": "custom.db"}
    config = IndexerConfig.load(Flags(), {"XDG_DATA_HOME": str(tmp_path / "data")})
    assert config.paths.storage_root == tmp_path / "data" / "opencode" / "storage"
    assert config.paths.db_path == tmp_path / "data" / "ocindex" / "index.duckdb"
    assert config.paths.opencode_env == {}
    assert config.indexer is None
    assert (config.rollout, config.tunables, config.alerts) == (Rollout(), Tunables(), Alerts())


def test_the_tree_is_frozen(tmp_path: Path) -> None:
    config = IndexerConfig.load(Flags(storage=tmp_path), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.indexer = "v2"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tunables.window_ms = 1  # type: ignore[misc]


def test_the_rollout_variables_are_parsed_once_and_keep_their_text() -> None:
    rollout = Rollout.from_env(
        {"UNIFIED_INDEXER_V2_ENABLED": " Yes", "UNIFIED_INDEXER_V2_ROLLOUT": " 0.25 "}
    )
    assert rollout == Rollout(enabled=True, enabled_text=" Yes", percent=25, percent_text="0.25")
    assert Rollout.from_env({"UNIFIED_INDEXER_V2_ENABLED": ""}) == Rollout()


def test_a_bulk_catch_up_grows_batches_unless_the_variable_is_set() -> None:
    assert Tunables().for_bulk(2000).max_batch_files_under_backlog == 2000
    assert Tunables.from_env({}).for_bulk(2000).max_batch_files_under_backlog == 2000
    set_to_500 = Tunables.from_env({"OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "500"})
    assert set_to_500.for_bulk(2000).max_batch_files_under_backlog == 500
    turned_off = Tunables.from_env({"OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "0"}).for_bulk(2000)
    assert pipeline_config(turned_off).accumulator.max_files_under_backlog is None


def test_alert_thresholds_come_from_the_environment() -> None:
    alerts = Alerts.from_env(
        {
            "OCINDEX_ALERT_ERROR_RATE": "0.5",
            "OCINDEX_ALERT_P95_MS": "250",
            "OCINDEX_ALERT_MIN_FILES": "7",
        }
    )
    assert alerts == Alerts(error_rate=0.5, p95_ms=250.0, min_files=7)


def test_paths_name_where_the_storage_root_came_from(tmp_path: Path) -> None:
    paths = Paths.from_env(Flags(), {"XDG_DATA_HOME": str(tmp_path)})
    assert paths.storage_source in ("$XDG_DATA_HOME", "home")
    (tmp_path / "opencode" / "storage").mkdir(parents=True)
    paths = Paths.from_env(Flags(), {"XDG_DATA_HOME": str(tmp_path)})
    assert (paths.storage_root, paths.storage_source) == (
        tmp_path / "opencode" / "storage",
        "$XDG_DATA_HOME",
    )


def test_temp_dir_is_tmpdir_else_tmp() -> None:
    assert temp_dir({"TMPDIR": "/scratch"}) == Path("/scratch")
    assert temp_dir({}) == Path("/tmp")


def test_the_service_takes_the_tunables_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCINDEX_WINDOW_MS", "60000")
    monkeypatch.setenv("UNIFIED_INDEXER_V2_ROLLOUT", "100")
    config = service_config(Flags(storage=tmp_path, db=tmp_path / "x.duckdb"), {})
    assert config.tunables.window_ms == 60000
    assert config.rollout == Rollout()
    assert service_config(Flags(storage=tmp_path)).rollout.percent == 100


def test_only_the_config_module_reads_the_process_environment() -> None:
    readers = sorted(
        str(path.relative_to(INDEXER))
        for path in INDEXER.rglob("*.py")
        if "os.environ" in path.read_text(encoding="utf-8")
    )
    assert readers == ["config.py"]
