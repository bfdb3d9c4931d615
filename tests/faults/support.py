"""Shared machinery of the fault tests: subprocesses with their logs, a running v2, the census
on a closed database. Never sleeps to synchronise: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from indexer.kinds import TABLES
from indexer.outcome import BatchResult, FileStatus
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.store.database import open_database
from tests.helpers import census, key_of, wait_until

REPO = Path(__file__).resolve().parents[2]


# --- subprocesses ---------------------------------------------------------------------------


def cli(*args: object) -> list[str]:
    """argv of `python -m indexer ARGS` with this interpreter."""
    return [sys.executable, "-m", "indexer", *map(str, args)]


def driver(spec: dict[str, object]) -> list[str]:
    """argv of the fault driver (tests/faults/_driver.py) with its JSON spec."""
    return [sys.executable, "-m", "tests.faults._driver", json.dumps(spec, default=str)]


def run_cli(*args: object, timeout_s: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def index_once(root: Path, db: Path) -> dict[str, object]:
    """`ocindex index --indexer v2 --json`: a one-shot catch-up; returns its summary."""
    done = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


class Spawned:
    """A child process whose stderr (and optionally stdout) lines are collected by threads."""

    def __init__(self, argv: Sequence[str], prefix: Sequence[str] = (), stdin: bool = False):
        self.proc = subprocess.Popen(
            [*prefix, *argv],
            cwd=REPO,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.err: list[str] = []
        self.out: list[str] = []
        self._pumps = [
            self._pump(self.proc.stderr, self.err),
            self._pump(self.proc.stdout, self.out),
        ]

    @staticmethod
    def _pump(stream: object, sink: list[str]) -> threading.Thread:
        def run() -> None:
            for line in stream:  # type: ignore[attr-defined]
                sink.append(line.rstrip("\n"))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return "\n".join(self.err[-40:])

    def find(self, text: str, after: int = 0) -> int | None:
        """Index of the first stderr line at or after `after` containing text, else None."""
        for i, line in enumerate(list(self.err)[after:], start=after):
            if text in line:
                return i
        return None

    def wait_for(self, text: str, timeout_s: float = 30.0, after: int = 0) -> int:
        """Wait for a stderr line containing text (failing with the log if it never comes)."""
        found: list[int] = []

        def seen() -> bool:
            i = self.find(text, after)
            if i is not None:
                found.append(i)
            return i is not None or self.proc.poll() is not None

        wait_until(seen, timeout_s, 0.05)
        assert found, f"no {text!r} on stderr within {timeout_s}s:\n{self.log()}"
        return found[0]

    def send(self, message: dict[str, object], timeout_s: float = 60.0) -> dict[str, object]:
        """Send one JSON command to a driver and return its JSON reply (one stdout line)."""
        assert self.proc.stdin is not None
        before = len(self.out)
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        assert wait_until(
            lambda: len(self.out) > before or self.proc.poll() is not None, timeout_s, 0.02
        ), f"no reply to {message} within {timeout_s}s:\n{self.log()}"
        assert len(self.out) > before, f"driver died on {message}:\n{self.log()}"
        reply: dict[str, object] = json.loads(self.out[before])
        return reply

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout_s: float = 60.0) -> int:
        rc = self.proc.wait(timeout_s)
        for pump in self._pumps:
            pump.join(5)
        return rc

    def kill(self) -> None:
        """Make sure the child is gone (SIGCONT first, in case a test left it stopped)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(30)


@contextmanager
def spawned(
    argv: Sequence[str], prefix: Sequence[str] = (), stdin: bool = False
) -> Iterator[Spawned]:
    child = Spawned(argv, prefix, stdin)
    try:
        yield child
    finally:
        child.kill()


# --- an in-process v2 ----------------------------------------------------------------------


class Outcomes:
    """Every per-file outcome of every committed batch, for asserting what a file went through."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches: list[BatchResult] = []

    def __call__(self, result: BatchResult) -> None:
        with self._lock:
            self.batches.append(result)

    def of(self, rel: str) -> list[tuple[FileStatus, str | None]]:
        with self._lock:
            return [
                (r.status, r.message)
                for b in self.batches
                for r in b.reads
                if r.key.rel_path == rel
            ]

    def batches_with(self, rel: str) -> list[BatchResult]:
        with self._lock:
            return [b for b in self.batches if any(r.key.rel_path == rel for r in b.reads)]


@contextmanager
def running_v2(
    root: Path, db: Path, config: V2Config | None = None, outcomes: Outcomes | None = None
) -> Iterator[UnifiedIndexerV2]:
    v2 = UnifiedIndexerV2(root, db, config=config, on_batch=outcomes)
    v2.start()
    try:
        yield v2
    finally:
        if v2.running:
            v2.stop()


def settle(v2: UnifiedIndexerV2, timeout_s: float = 60.0, settle_s: float = 0.3) -> None:
    assert v2.wait_idle(timeout_s, settle_s), f"not idle after {timeout_s}s: {v2.stats()}"


def row(cursor: duckdb.DuckDBPyConnection, rel: str) -> tuple[str, str | None, str | None] | None:
    """(status, error_message, content_hash) of one file_index row, or None."""
    found = cursor.execute(
        "SELECT status, error_message, content_hash FROM file_index WHERE file_path = ?", [rel]
    ).fetchone()
    return None if found is None else (str(found[0]), found[1], found[2])


def status_of(cursor: duckdb.DuckDBPyConnection, rel: str) -> str | None:
    found = row(cursor, rel)
    return None if found is None else found[0]


def owned_rows(cursor: duckdb.DuckDBPyConnection, rel: str) -> int:
    """How many data rows the file at rel owns (0 for kinds without a table)."""
    key = key_of(rel)
    table = TABLES.get(key.kind)
    if table is None:
        return 0
    found = cursor.execute(
        f"SELECT count(*) FROM {table.name} WHERE {table.owner_column} = ?", [key.record_id]
    ).fetchone()
    return int(found[0]) if found else 0


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> int:
    found = conn.execute(sql, list(params)).fetchone()
    assert found is not None
    return int(found[0])


@contextmanager
def reading(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = open_database(db, read_only=True)
    try:
        yield conn
    finally:
        conn.close()


def census_of(db: Path, root: Path) -> list[str]:
    """The census on a database no process holds (open read-only, compare, close)."""
    with reading(db) as conn:
        return census(conn, root)


def write_now(path: Path, data: bytes) -> None:
    """Write in place like OpenCode (truncate, then write), creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def backdate(path: Path, seconds: float = 3600.0) -> None:
    """Give a file an mtime well in the past, so it counts as settled."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def poll(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    assert wait_until(predicate, timeout_s), f"timed out after {timeout_s}s waiting for {what}"
