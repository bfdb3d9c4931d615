"""The configuration tree: built once from flags and the environment, frozen, validated with one
line that names the variable, and the only reader of the process environment."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from indexer.cli import build_parser
from indexer.config import (
    ENV_ENABLED,
    ENV_ROLLOUT,
    LOCK_WAIT_S,
    MAX_BATCH_FILES_UNDER_BACKLOG,
    MAX_FILE_BYTES,
    RANGES,
    Alerts,
    ConfigError,
    Flags,
    IndexerConfig,
    Paths,
    Rollout,
    Tunables,
    cores,
    default_db_path,
    lock_wait_s,
    parse_setting,
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
    assert config.accumulator.max_files_under_backlog == MAX_BATCH_FILES_UNDER_BACKLOG
    assert config.reconciler.interval_s == 30


def test_adaptive_batches_are_on_unless_the_variable_turns_them_off() -> None:
    on = pipeline_config(Tunables.from_env({})).accumulator
    assert (on.max_files, on.max_files_under_backlog) == (100, MAX_BATCH_FILES_UNDER_BACKLOG)
    off = Tunables.from_env({"OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "0"})
    assert pipeline_config(off).accumulator.max_files_under_backlog is None


def test_defaults_agree_with_the_pipeline_and_the_dashboard() -> None:
    # The product runs its watcher in a process of its own, shares a big tree's walk with one
    # thread per core and reads a big first catch-up on a worker per core; the library's
    # defaults stay in this process, on one thread.
    product = pipeline_config(Tunables())
    assert product.watch_process and product.reconciler.walk_threads == cores()
    assert product.pool.first_load_workers == cores()
    unset = pipeline_config(Tunables.from_env({"OCINDEX_READ_WORKERS": "0"})).pool
    assert (unset.workers, unset.first_load_workers) == (0, 0)
    library = dataclasses.replace(
        product,
        watch_process=False,
        reconciler=dataclasses.replace(product.reconciler, walk_threads=1),
        pool=dataclasses.replace(product.pool, first_load_workers=0),
    )
    assert library == V2Config()
    for env in ({"OCINDEX_WALK_THREADS": "3"}, {"OCINDEX_WALK_PROCESSES": "3"}):  # the old name
        assert pipeline_config(Tunables.from_env(env)).reconciler == (
            dataclasses.replace(product.reconciler, walk_threads=3)
        )
    both = {"OCINDEX_WALK_THREADS": "2", "OCINDEX_WALK_PROCESSES": "5"}
    assert Tunables.from_env(both).walk_threads == 2
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
    assert Tunables().for_bulk(2000, 2).max_batch_files_under_backlog == 2000
    assert Tunables.from_env({}).for_bulk(2000, 2).max_batch_files_under_backlog == 2000
    set_to_500 = Tunables.from_env({"OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "500"})
    assert set_to_500.for_bulk(2000, 2).max_batch_files_under_backlog == 500
    turned_off = Tunables.from_env({"OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG": "0"})
    assert pipeline_config(turned_off.for_bulk(2000, 2)).accumulator.max_files_under_backlog is None


def test_a_bulk_catch_up_reads_on_one_worker_per_core_unless_the_variable_is_set() -> None:
    assert pipeline_config(Tunables()).pool.workers == 0  # the daemon reads on its own thread
    assert pipeline_config(Tunables().for_bulk(2000, 3)).pool.workers == 3
    set_to_1 = Tunables.from_env({"OCINDEX_READ_WORKERS": "1"})
    assert pipeline_config(set_to_1.for_bulk(2000, 3)).pool.workers == 1
    assert pipeline_config(set_to_1).pool.workers == 1  # the daemon too, when asked
    turned_off = Tunables.from_env({"OCINDEX_READ_WORKERS": "0"}).for_bulk(2000, 3)
    assert pipeline_config(turned_off).pool.workers == 0


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
    monkeypatch.setenv("OCINDEX_IDLE_SEAL_MS", "5")
    monkeypatch.setenv("UNIFIED_INDEXER_V2_ROLLOUT", "100")
    config = service_config(Flags(storage=tmp_path, db=tmp_path / "x.duckdb"), {})
    assert (config.tunables.window_ms, config.tunables.idle_seal_ms) == (60000, 5)
    assert config.rollout == Rollout()
    assert service_config(Flags(storage=tmp_path)).rollout.percent == 100


def test_only_the_config_module_reads_the_process_environment() -> None:
    readers = sorted(
        str(path.relative_to(INDEXER))
        for path in INDEXER.rglob("*.py")
        if "os.environ" in path.read_text(encoding="utf-8")
    )
    assert readers == ["config.py"]


# --- every setting, every hostile value ----------------------------------------------------

NUMERIC_VARIABLES = [name for name in RANGES if not name.startswith("--")]
FLAGS = [name for name in RANGES if name.startswith("--")]
HOSTILE = ["nan", "inf", "-inf", "1e308", "1e400", "garbage", "-1", "0", "9" * 40, "0x10"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def accepts(name: str, value: str) -> bool:
    """Whether the setting takes the value: a finite number within its range, whole if asked."""
    if name == ENV_ENABLED:
        return value == "0"
    if name == ENV_ROLLOUT:
        return value == "0"
    accepted = RANGES[name]
    try:
        number = float(value)
    except ValueError:
        return False
    return (
        math.isfinite(number)
        and accepted.low <= number <= accepted.high
        and (number.is_integer() or not accepted.whole)
    )


def test_every_documented_variable_is_walked_by_the_matrix() -> None:
    documented = set(re.findall(r"`((?:OCINDEX|UNIFIED_INDEXER)_[A-Z0-9_]+)`", DOCS.read_text()))
    walked = {*NUMERIC_VARIABLES, ENV_ENABLED, ENV_ROLLOUT}
    assert documented - {"OCINDEX_STORAGE", "OCINDEX_DB"} == walked


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", [*NUMERIC_VARIABLES, ENV_ENABLED, ENV_ROLLOUT])
def test_every_variable_takes_a_hostile_value_or_refuses_it_in_one_line(
    name: str, value: str
) -> None:
    if accepts(name, value):
        IndexerConfig.load(Flags(), {name: value})
        return
    with pytest.raises(ConfigError) as caught:
        IndexerConfig.load(Flags(), {name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}={value!r} ") and "\n" not in message
    assert "; accepted: " in message
    if name in RANGES:
        assert message.endswith(f"; accepted: {RANGES[name]}")


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", FLAGS)
def test_every_numeric_flag_takes_a_hostile_value_or_refuses_it_in_one_line(
    name: str, value: str
) -> None:
    if accepts(name, value):
        assert parse_setting(name, value) == float(value)
        return
    with pytest.raises(ConfigError) as caught:
        parse_setting(name, value)
    assert str(caught.value) == (
        f"{name} {value!r} {problem(name, value)}; accepted: {RANGES[name]}"
    )


def problem(name: str, value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return "is not a number"
    if not math.isfinite(number):
        return "is not a finite number"
    if RANGES[name].whole and not number.is_integer():
        return "is not a whole number"
    return "is out of range"


@pytest.mark.parametrize(
    ("name", "value", "parsed"),
    [
        ("OCINDEX_MAX_BATCH_FILES", "1e3", 1000),
        ("OCINDEX_MAX_BATCH_FILES", " 250 ", 250),
        ("OCINDEX_WINDOW_MS", "0", 0.0),
        ("OCINDEX_RECONCILE_INTERVAL_S", "0.1", 0.1),
        ("OCINDEX_LOCK_WAIT_S", "0", 0.0),
        ("OCINDEX_MAX_FILE_BYTES", str(1 << 30), 1 << 30),
    ],
)
def test_the_edges_of_a_range_are_accepted(name: str, value: str, parsed: float) -> None:
    assert parse_setting(name, value) == parsed
    assert isinstance(parse_setting(name, value), int) == RANGES[name].whole


def test_a_fraction_is_not_a_whole_number() -> None:
    with pytest.raises(ConfigError, match=r"'2\.5' is not a whole number; accepted: a whole"):
        parse_setting("--metrics-port", "2.5")


def test_every_default_lies_in_its_range() -> None:
    defaults: dict[str, object] = {
        "OCINDEX_WINDOW_MS": Tunables.window_ms,
        "OCINDEX_IDLE_SEAL_MS": Tunables.idle_seal_ms,
        "OCINDEX_MAX_BATCH_FILES": Tunables.max_batch_files,
        "OCINDEX_MAX_FILE_BYTES": Tunables.max_file_bytes,
        "OCINDEX_SETTLE_S": Tunables.settle_s,
        "OCINDEX_RECONCILE_INTERVAL_S": Tunables.reconcile_interval_s,
        "OCINDEX_ALERT_ERROR_RATE": Alerts.error_rate,
        "OCINDEX_ALERT_P95_MS": Alerts.p95_ms,
        "OCINDEX_ALERT_MIN_FILES": Alerts.min_files,
        "OCINDEX_LOCK_WAIT_S": LOCK_WAIT_S,
        "OCINDEX_READ_WORKERS": cores(),  # ocindex index's; 0 elsewhere
        "OCINDEX_READ_FILES_ON_WORKERS": Tunables.read_files_on_workers,
        "OCINDEX_WATCHER_PROCESS": Tunables.watcher_process,
        "OCINDEX_FIRST_LOAD": Tunables.first_load,
        "OCINDEX_WALK_THREADS": cores(),  # one per core when unset
        "OCINDEX_WALK_PROCESSES": cores(),  # its older name
    }
    _, sub = build_parser()
    for parser in sub.choices.values():
        for action in parser._actions:
            for option in action.option_strings:
                if option in RANGES and action.default is not None:
                    defaults[option] = action.default
    unset_by_default = {"--rate", "--metrics-port", "OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG"}
    assert set(defaults) == set(RANGES) - unset_by_default
    for name, default in defaults.items():
        assert parse_setting(name, str(default)) == default, name


def test_the_lock_wait_is_part_of_the_tree_and_checked_when_it_loads() -> None:
    assert IndexerConfig.load(Flags(), {}).lock_wait_s == LOCK_WAIT_S == 5.0
    assert IndexerConfig.load(Flags(), {"OCINDEX_LOCK_WAIT_S": "0.5"}).lock_wait_s == 0.5
    assert lock_wait_s({"OCINDEX_LOCK_WAIT_S": "12"}) == 12
    with pytest.raises(ConfigError, match="OCINDEX_LOCK_WAIT_S='forever'"):
        IndexerConfig.load(Flags(), {"OCINDEX_LOCK_WAIT_S": "forever"})


@pytest.mark.parametrize("name", list(RANGES))
def test_the_configuration_reference_gives_every_range(name: str) -> None:
    accepted = str(RANGES[name]).removeprefix("a whole number from ").removeprefix("a number from ")
    lines = [line for line in DOCS.read_text().splitlines() if f"`{name}" in line and "|" in line]
    assert lines, f"{name} is not in a table of docs/configuration.md"
    assert any(accepted in line for line in lines), (name, accepted, lines)
