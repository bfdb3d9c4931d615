"""Every command, and every read worker, builds its Arrow buffers with an allocator that keeps
freed memory (indexer.arrow_memory), unless the user chose one with Arrow's own variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import pyarrow as pa
import pytest

from indexer.arrow_memory import CHOSEN_BY_USER, REUSING_BACKENDS
from indexer.cli import run_command
from tests.helpers import read_worker_as_it_serves

EXPECTED = next(name for name in REUSING_BACKENDS if name in pa.supported_memory_backends())


@pytest.fixture
def arrow_pool() -> Iterator[None]:
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


@pytest.mark.usefixtures("arrow_pool")
def test_a_command_runs_on_the_reusing_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CHOSEN_BY_USER, raising=False)
    pa.set_memory_pool(pa.mimalloc_memory_pool())  # pyarrow's own default on Linux
    seen: list[str] = []

    def command(args: argparse.Namespace) -> int:
        seen.append(pa.default_memory_pool().backend_name)
        return 0

    assert run_command(argparse.Namespace(func=command)) == 0
    assert seen == [EXPECTED]


def worker_allocator(chosen: str | None) -> str:
    """The allocator a read worker (its own process) has when it starts to serve."""
    env = {k: v for k, v in os.environ.items() if k != CHOSEN_BY_USER}
    if chosen is not None:
        env[CHOSEN_BY_USER] = chosen
    return read_worker_as_it_serves("pa.default_memory_pool().backend_name", env)


def test_a_read_worker_serves_on_the_reusing_allocator() -> None:
    assert worker_allocator(None) == EXPECTED


def test_the_users_choice_of_allocator_stands() -> None:
    assert worker_allocator("mimalloc") == "mimalloc"
