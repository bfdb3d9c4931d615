from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from indexer.config import DEFAULT_ROLLOUT
from indexer.rollout import (
    ENV_ENABLED,
    ENV_ROLLOUT,
    RolloutState,
    bucket_of,
    choose_version,
    in_cohort,
    parse_rollout,
)


@pytest.fixture
def state(tmp_path: Path) -> RolloutState:
    return RolloutState(tmp_path / "index.duckdb")


def test_the_enabled_flag_forces_v2_on_or_off_whatever_the_rollout(state: RolloutState) -> None:
    assert choose_version(None, state, {ENV_ENABLED: "true", ENV_ROLLOUT: "0"}).version == "v2"
    assert choose_version(None, state, {ENV_ENABLED: "false", ENV_ROLLOUT: "100"}).version == "v1"
    assert ENV_ENABLED in choose_version(None, state, {ENV_ENABLED: "1"}).reason


def test_cli_choice_overrides_everything(state: RolloutState) -> None:
    choice = choose_version("v1", state, {ENV_ENABLED: "true", ENV_ROLLOUT: "100"})
    assert (choice.version, choice.reason) == ("v1", "--indexer v1")


def test_unset_flag_uses_the_rollout_variable_over_the_default(state: RolloutState) -> None:
    assert choose_version(None, state, {ENV_ROLLOUT: "0"}).version == "v1"
    assert choose_version(None, state, {ENV_ROLLOUT: "100"}).version == "v2"
    assert choose_version(None, state, {ENV_ROLLOUT: "1.0"}).version == "v2"
    bucket = bucket_of(state.install_id())
    just_in = choose_version(None, state, {ENV_ROLLOUT: str(bucket + 1)})
    just_out = choose_version(None, state, {ENV_ROLLOUT: str(bucket)})
    assert (just_in.version, just_out.version) == ("v2", "v1")
    assert f"bucket {bucket}" in just_in.reason


def test_a_fresh_install_runs_v2_by_the_default_rollout(state: RolloutState) -> None:
    choice = choose_version(None, state, {})
    bucket = bucket_of(state.install_id())
    assert (choice.version, choice.rollout_percent) == ("v2", DEFAULT_ROLLOUT) == ("v2", 100)
    assert choice.reason == f"default rollout 100%: install bucket {bucket} < 100"


def test_a_fresh_install_read_only_runs_v2_before_any_install_id(tmp_path: Path) -> None:
    state = RolloutState(tmp_path / "index.duckdb", writable=False)
    choice = choose_version(None, state, {})
    assert choice.version == "v2" and "no install id yet" in choice.reason
    assert not state.path.exists()


@pytest.mark.parametrize(
    ("cli", "env", "persisted", "reason"),
    [
        ("v1", {}, None, "--indexer v1"),
        (None, {ENV_ENABLED: "false"}, None, f"{ENV_ENABLED}=false"),
        (None, {ENV_ROLLOUT: "0"}, None, f"{ENV_ROLLOUT}=0 0%"),
        (None, {}, 0, "persisted rollout 0%"),
    ],
    ids=["--indexer", "enabled-false", "rollout-0", "rolled-back"],
)
def test_each_override_of_the_default_still_gives_v1(
    state: RolloutState, cli: str | None, env: dict[str, str], persisted: int | None, reason: str
) -> None:
    if persisted is not None:
        state.save(rollout_percent=persisted)
    choice = choose_version(cli, state, env)
    assert choice.version == "v1" and choice.reason.startswith(reason), choice


def test_ten_percent_of_a_thousand_installs_get_v2_within_bounds() -> None:
    ids = [uuid.UUID(int=i * 7919 + 12345).hex for i in range(1000)]
    share = sum(in_cohort(i, parse_rollout("10")) for i in ids) / len(ids)
    assert 0.07 <= share <= 0.13
    # The same id always gets the same answer, and both scales give the same cohort.
    assert [in_cohort(i, parse_rollout("10")) for i in ids] == [
        in_cohort(i, parse_rollout("0.1")) for i in ids
    ]


def test_install_id_is_stable_beside_the_database(tmp_path: Path) -> None:
    first = RolloutState(tmp_path / "a.duckdb").install_id()
    assert RolloutState(tmp_path / "a.duckdb").install_id() == first
    assert (tmp_path / "a.duckdb.rollout.json").exists()
    assert RolloutState(tmp_path / "b.duckdb").install_id() != first


def test_persisted_rollout_beats_the_environment(state: RolloutState) -> None:
    state.save(rollout_percent=0)
    assert choose_version(None, state, {ENV_ROLLOUT: "100"}).version == "v1"
    state.save(rollout_percent=100)
    assert choose_version(None, state, {ENV_ROLLOUT: "0"}).version == "v2"


@pytest.mark.parametrize(
    ("text", "percent"),
    [("0", 0), ("10", 10), ("100", 100), ("0.25", 25), ("1.0", 100), ("0.0", 0), ("50.0", 50)],
)
def test_parse_rollout_reads_a_percentage_or_a_fraction_of_one(text: str, percent: int) -> None:
    assert parse_rollout(text) == percent


@pytest.mark.parametrize("text", ["-1", "101", "abc", "1.5e9"])
def test_parse_rollout_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rollout(text)


def test_bad_flag_is_a_clear_error(state: RolloutState) -> None:
    with pytest.raises(ValueError, match=ENV_ENABLED):
        choose_version(None, state, {ENV_ENABLED: "maybe"})
