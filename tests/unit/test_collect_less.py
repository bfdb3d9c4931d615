"""Every command, and every process the indexer starts, runs with the cycle collector's young
generation raised (indexer.collector)."""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys

from indexer.cli import run_command
from indexer.collector import YOUNG_OBJECTS_BEFORE_GC
from tests.conftest import PYTHONS_COLLECTOR


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
    code = (
        "import gc, os, sys\n"
        "from indexer.pipeline import read_worker\n"
        "read_worker.serve = lambda tasks, answers: sys.stderr.write("
        "f'{gc.get_threshold()[0]} {gc.get_freeze_count()}')\n"
        "tasks, _ = os.pipe()\n"
        "_, answers = os.pipe()\n"
        "sys.exit(read_worker.main([str(tasks), str(answers)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    threshold, frozen = map(int, done.stderr.split())
    assert threshold == YOUNG_OBJECTS_BEFORE_GC
    assert frozen > 1000  # pyarrow, orjson and the reader, imported before it forks
