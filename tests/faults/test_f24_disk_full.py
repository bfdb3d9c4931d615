"""F24: the disk under the database fills up (a real ENOSPC, on a small tmpfs).

A failed COMMIT is logged once with its real cause (never the "no transaction is active" of
the ROLLBACK after it); a checkpoint that fails invalidates the database in DuckDB: the writer
says why once, shows it in its condition, and reopens the database once space returns, after
which everything written meanwhile is committed (a reconcile finds it). When the database
cannot be reopened, `run` exits 1 naming the cause instead of running on indexing nothing; a
restart with space then completes the index.

Needs root to mount a tmpfs; skipped where that is impossible.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from tests.faults.support import census_of, driver, index_once, poll, spawned, write_now
from tests.helpers import wait_until

DISK_SIZE = "24m"


@contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", os.fspath(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", os.fspath(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last page; return the ballast to delete."""
    ballast = disk / "ballast"
    with open(ballast, "ab", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return ballast


class Steady:
    """True once a WAL holds commits and its size has not changed for a second."""

    def __init__(self, wal: Path) -> None:
        self.wal = wal
        self.seen: tuple[int, float] = (0, 0.0)

    def __call__(self) -> bool:
        size = self.wal.stat().st_size if self.wal.exists() else 0
        now = time.monotonic()
        if size != self.seen[0]:
            self.seen = (size, now)
        return size > 100_000 and now - self.seen[1] >= 1.0


def write_parts(root: Path, start: int, stop: int) -> None:
    for i in range(start, stop):
        text = f"part {i} " + "x" * 3000
        write_now(
            root / f"part/msg_{i % 7}/prt_{i}.json",
            orjson.dumps({"id": f"prt_{i}", "type": "text", "text": text}),
        )


def test_a_full_disk_is_logged_once_and_committing_resumes_when_space_returns(
    tmp_path: Path, root: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        db = disk / "index.duckdb"
        spec = {"mode": "v2", "root": root, "db": db, "settle_s": 0.2, "interval_s": 30}
        spec |= {"idle_checkpoint_s": 3600}  # the test checkpoints when the disk is full
        with spawned(driver(spec), stdin=True) as child:
            poll(lambda: bool(child.out) or child.proc.poll() is not None, 60, "the driver")
            assert child.out[:1] == ['{"ready": true}'], child.log()
            write_parts(root, 0, 200)
            assert child.send({"cmd": "idle"})["ok"]
            ballast = fill(disk)
            write_parts(root, 200, 400)  # commits fail: the WAL cannot grow
            checkpoint = child.send({"cmd": "checkpoint"})
            assert not checkpoint["ok"] and "No space left" in str(checkpoint["error"])
            stats = child.send({"cmd": "stats"})
            assert "No space left on device" in str(stats["condition"]), stats
            assert stats["fatal"] is None
            ballast.unlink()  # space returns: the database is reopened, the rest committed
            poll(lambda: child.send({"cmd": "stats"})["reopened"] >= 1, 60, "a reopen")
            assert child.send({"cmd": "stats"})["condition"] is None
            assert child.send({"cmd": "idle", "timeout_s": 90})["ok"]
            assert child.send({"cmd": "stop"})["ok"]
            assert child.wait(30) == 0
        log = "\n".join(child.err)
        assert "no transaction is active" not in log
        assert "No space left on device" in log
        assert sum("database invalidated" in line for line in child.err) == 1, log
        assert sum("batch not committed" in line for line in child.err) <= 1, log
        assert census_of(db, root) == []


def test_run_exits_1_naming_the_cause_when_the_database_cannot_be_reopened(
    tmp_path: Path, root: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        db = disk / "index.duckdb"
        wal = disk / "index.duckdb.wal"
        argv = ["run", "--storage", root, "--db", db, "--indexer", "v2"]
        spec = {"mode": "cli", "argv": argv, "idle_checkpoint_s": 5, "give_up_s": 1}
        with spawned(driver(spec)) as child:
            child.wait_for("running v2", 60)
            write_parts(root, 0, 300)
            poll(Steady(wal), 30, "every file committed to the WAL")
            ballast = fill(disk)  # the idle checkpoint after those commits fails
            exited = wait_until(lambda: child.proc.poll() is not None, 120)
            assert exited, f"run still running on a database it cannot write:\n{child.log()}"
            rc = child.wait(30)
        assert rc == 1, child.log()
        last = [line for line in child.err if line.startswith("ocindex: error:")]
        assert last and "the index writer stopped" in last[-1] and "No space left" in last[-1]
        assert "Traceback" not in child.log()
        ballast.unlink()
        summary = index_once(root, db)  # committed rows were kept; a restart completes
        assert summary["indexed"] == 300
        assert census_of(db, root) == []
