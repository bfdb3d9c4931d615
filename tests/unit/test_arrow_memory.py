"""Every command, and every read worker, builds its Arrow buffers with an allocator that keeps
freed memory (indexer.arrow_memory), unless the user chose one with Arrow's own variable; the
choice is made before pyarrow loads, so Arrow's C++ makes its own buffers with it too."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from indexer.arrow_memory import CHOSEN_BY_USER, FALLBACK, PREFERRED, reusing_backend
from indexer.cli import run_command
from indexer.pipeline.read_pool import PoolConfig, ReadPool
from indexer.pipeline.reader import ProcessorConfig
from tests.helpers import children_running

EXPECTED = PREFERRED if PREFERRED in pa.supported_memory_backends() else FALLBACK


@pytest.fixture
def arrow_pool() -> Iterator[None]:
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


def test_the_backend_chosen_is_one_this_pyarrow_has() -> None:
    assert reusing_backend() == EXPECTED


def allocator_as_the_cli_loads(chosen: str | None) -> str:
    """Arrow's default allocator in a process that loads the CLI, then pyarrow: nothing there
    sets pyarrow's own default, so this is the one Arrow's C++ chose as it loaded."""
    env = {k: v for k, v in os.environ.items() if k != CHOSEN_BY_USER}
    if chosen is not None:
        env[CHOSEN_BY_USER] = chosen
    code = (
        "import sys\n"
        "import indexer.cli\n"
        "import pyarrow as pa\n"
        "sys.stdout.write(pa.default_memory_pool().backend_name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "Unsupported backend" not in done.stderr
    return done.stdout


def test_arrows_own_buffers_come_from_the_reusing_allocator_in_a_command() -> None:
    assert allocator_as_the_cli_loads(None) == EXPECTED


def test_the_users_choice_of_allocator_stands() -> None:
    assert allocator_as_the_cli_loads("mimalloc") == "mimalloc"


@pytest.mark.usefixtures("arrow_pool")
def test_a_command_run_where_pyarrow_is_loaded_already_gets_it_for_pyarrows_buffers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CHOSEN_BY_USER, raising=False)
    pa.set_memory_pool(pa.mimalloc_memory_pool())  # pyarrow's own default on Linux
    seen: list[str] = []

    def command(args: argparse.Namespace) -> int:
        seen.append(pa.default_memory_pool().backend_name)
        return 0

    assert run_command(argparse.Namespace(func=command)) == 0
    assert seen == [EXPECTED]


def worker_environment(tmp_path: Path) -> dict[str, str]:
    """The environment a read pool's worker process started with (Linux: /proc)."""
    pool = ReadPool(tmp_path, ProcessorConfig(), PoolConfig(workers=1))
    try:
        assert pool.read_wire([]) == []  # the workers are up
        (pid,) = children_running(os.getpid(), "indexer.pipeline.read_worker")
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        pool.close()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_read_workers_start_with_the_choice_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CHOSEN_BY_USER, raising=False)
    assert worker_environment(tmp_path)[CHOSEN_BY_USER] == EXPECTED
    monkeypatch.setenv(CHOSEN_BY_USER, "mimalloc")
    assert worker_environment(tmp_path)[CHOSEN_BY_USER] == "mimalloc"
