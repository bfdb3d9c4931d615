"""Every command runs with the cycle collector's young generation raised (indexer.cli)."""

from __future__ import annotations

import argparse
import gc

from indexer.cli import YOUNG_OBJECTS_BEFORE_GC, run_command


def test_a_command_runs_with_the_young_generation_raised_and_start_up_frozen() -> None:
    # tests/conftest.py gives the collector back as it was after each test.
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
