"""Fixtures every test folder shares, and how `make test` spreads the tests over pytest-xdist
workers. Never starts an indexer or writes outside a test's tmp_path."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from indexer.store.database import open_database
from indexer.store.schema import migrate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real"

# Many tests write thousands of small files and DuckDB files: on a RAM disk that costs a fraction
# of what a journaled disk does. Only where one is present with room to spare.
RAM_DISK = Path("/dev/shm")
RAM_DISK_ROOM = 2 << 30


def ram_disk_with_room(path: Path = RAM_DISK, room: int = RAM_DISK_ROOM) -> Path | None:
    """`path` if it is a writable folder with at least `room` bytes free, else None."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        return None
    return path if stats.f_bavail * stats.f_frsize >= room else None


def pytest_configure(config: pytest.Config) -> None:
    """tmp_path folders go to the RAM disk unless a temp location was chosen (--basetemp,
    PYTEST_DEBUG_TEMPROOT or TMPDIR). pytest-xdist workers inherit the controller's choice."""
    chosen = config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT")
    if chosen or os.environ.get("TMPDIR"):
        return
    ram_disk = ram_disk_with_room()
    if ram_disk is not None:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(ram_disk)


def corpus_roots() -> list[Path]:
    """Every storage root in the real corpus, the legacy layout included."""
    return sorted(CORPUS.glob("*/storage")) + sorted(CORPUS.glob("*/project/*/storage"))


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    root.mkdir()
    return root


PYTHONS_COLLECTOR = gc.get_threshold()
"""The cycle collector's thresholds as Python starts, before any command tuned them."""


@pytest.fixture(autouse=True)
def collector_as_python_sets_it() -> Iterator[None]:
    """A command run in this process (`run_command`) tunes the cycle collector for the whole
    process (`indexer.collector.collect_less`): after each test it is as Python set it."""
    yield
    gc.unfreeze()
    gc.set_threshold(*PYTHONS_COLLECTOR)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "index.duckdb"


@pytest.fixture
def index_db(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = open_database(db_path)
    migrate(conn)
    yield conn
    conn.close()


# `make test` runs pytest-xdist with --dist loadgroup: the tests of one group run one after
# another on one worker, every other test goes wherever a worker is free.
XDIST_GROUPS: dict[str, tuple[str, ...]] = {
    # Writers at full speed and trees of tens of thousands of files, together with the tests
    # whose assertions need a fair share of the CPU within a fixed time (polls while a writer
    # runs, a paced writer reaching its count): two of these at once on two cores starve the
    # second, so they never overlap.
    "cpu_hungry": (
        "tests/faults/test_f01_kill9_mid_batch.py::"
        "test_kill_9_of_a_plain_run_under_live_writes_then_run_again",
        "tests/faults/test_f02_inotify_overflow.py",
        "tests/integration/test_crash.py::"
        "test_kill_9_during_heavy_indexing_then_restart_matches_disk",
        "tests/integration/test_sqlite.py::"
        "test_live_writes_end_in_duckdb_with_final_content_and_a_deleted_session_goes_in_one_reconcile",
        "tests/integration/test_v2.py::"
        "test_ten_thousand_files_with_rewrites_end_exactly_once_and_current",
        "tests/tui/test_real_engine.py",
    ),
    # A module-scoped fixture (the simulator's once-mode tree, the database F12 holds) is built
    # once per worker that runs any of its tests: keep each module on one.
    "test_simulate": ("tests/unit/test_simulate.py",),
    "test_f12": ("tests/faults/test_f12_database_held.py",),
}


# Coverage traces with sys.settrace, which makes every line of Python run several times slower
# (Textual, watchdog and pytest too, not only the measured code). These end-to-end and load
# tests, and the commands they start, execute no line of indexer/ or tui/ that the rest of the
# suite leaves out (checked with `pytest --cov --cov-context=test`, the subprocesses given a
# context per test: no line is covered by these alone), so they run untraced: pytest-cov's
# no_cover, and no coverage in the subprocesses they start (pytest_runtest_call below).
UNTRACED: tuple[str, ...] = (
    "tests/faults/test_f02_inotify_overflow.py",
    "tests/integration/test_crash.py::test_kill_9_during_heavy_indexing_then_restart_matches_disk",
    "tests/integration/test_parity.py::"
    "test_v1_and_v2_write_identical_rows_for_the_simulator_with_faults",
    "tests/integration/test_sqlite.py::"
    "test_live_writes_end_in_duckdb_with_final_content_and_a_deleted_session_goes_in_one_reconcile",
    "tests/integration/test_sqlite.py::"
    "test_the_indexer_holds_no_read_transaction_so_opencodes_checkpoints_keep_the_wal_small",
    "tests/integration/test_sqlite.py::"
    "test_kill_9_during_sqlite_ingestion_then_restart_loses_and_duplicates_nothing",
    "tests/integration/test_v2.py::"
    "test_ten_thousand_files_with_rewrites_end_exactly_once_and_current",
    "tests/integration/test_v2.py::test_with_half_the_events_dropped_the_reconciler_finds_every_file",
    "tests/tui/test_real_engine.py::test_pending_flush_latency_and_switch_to_v1_lose_nothing",
    "tests/tui/test_real_engine.py::"
    "test_polling_at_full_write_speed_raises_no_lock_or_concurrency_error",
    "tests/tui/test_real_engine.py::test_error_burst_shows_the_banner_and_b_rolls_back",
)


# tryfirst: pytest-xdist reads the xdist_group marks in its own collection hook, which would
# otherwise run before this one and see none.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of XDIST_GROUPS and UNTRACED; warn about an entry naming a test its
    module lacks."""
    owner = {node: group for group, nodes in XDIST_GROUPS.items() for node in nodes}
    untraced = set(UNTRACED)
    modules: dict[str, object] = {}
    for item in items:
        test_id = item.nodeid.split("[", 1)[0]  # every parameter set of a listed test
        test_file = test_id.split("::", 1)[0]
        modules.setdefault(test_file, getattr(item, "module", None))
        group = owner.get(test_id) or owner.get(test_file)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        if test_id in untraced or test_file in untraced:
            item.add_marker(pytest.mark.no_cover)
    for node in [*owner, *untraced]:
        test_file, _, name = node.partition("::")
        module = modules.get(test_file)
        if name and module is not None and not hasattr(module, name):
            warnings.warn(
                f"tests/conftest.py names {node}, which does not exist",
                pytest.PytestWarning,
                stacklevel=1,
            )


# What coverage's patch = ["subprocess"] puts in the environment of the processes a test starts.
COVERAGE_VARIABLES = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """An untraced test's subprocesses run without coverage too."""
    if item.get_closest_marker("no_cover") is None:
        return (yield)
    saved = {name: os.environ.pop(name) for name in COVERAGE_VARIABLES if name in os.environ}
    try:
        return (yield)
    finally:
        os.environ.update(saved)
