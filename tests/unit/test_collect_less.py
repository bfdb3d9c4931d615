"""Every command, and every process the indexer starts, runs with the cycle collector's young
generation raised (indexer.collector)."""

from __future__ import annotations

import argparse
import gc

from indexer.cli import run_command
from indexer.collector import YOUNG_OBJECTS_BEFORE_GC
from tests.conftest import PYTHONS_COLLECTOR
from tests.helpers import read_worker_as_it_serves


def test_a_command_runs_with_the_young_generation_raised_and_start_up_frozen() -> None:
    # As Python starts (a fixture of a broader scope may have run a command); tests/conftest.py
    # gives the collector back after each test.
    gc.unfreeze()
    gc.set_threshold(*PYTHONS_COLLECTOR)
    seen: list[tuple[tuple[int, int, int], int]] = []

    def command(args: argparse.Namespace) -> int:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return 0

    before = gc.get_threshold()
    assert before[0] != YOUNG_OBJECTS_BEFORE_GC
    assert run_command(argparse.Namespace(func=command)) == 0
    ((threshold, frozen),) = seen
    assert threshold == (YOUNG_OBJECTS_BEFORE_GC, before[1], before[2])
    assert frozen > 1000  # the modules and classes loaded before the command


def test_a_read_worker_serves_with_the_young_generation_raised_and_its_imports_frozen() -> None:
    # Its own process (python -m indexer.pipeline.read_worker), up to the point it serves.
    report = read_worker_as_it_serves("f'{gc.get_threshold()[0]} {gc.get_freeze_count()}'")
    threshold, frozen = map(int, report.split())
    assert threshold == YOUNG_OBJECTS_BEFORE_GC
    assert frozen > 1000  # pyarrow, orjson and the reader, imported before it forks
