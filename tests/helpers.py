"""Test helpers shared by unit, integration and fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from indexer.kinds import DATA_TABLES, TABLES, FileKey, classify
from indexer.listing import stored_path
from indexer.outcome import ParsedFile
from indexer.pipeline import batch_read, reader
from indexer.pipeline import v2 as v2_module
from indexer.pipeline.reader import clamp_rows
from indexer.pipeline.watcher import StorageWatcher
from indexer.records import content_hash, parse


def key_of(rel: str) -> FileKey:
    key = classify(rel)
    assert key is not None, rel
    return key


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 10.0, step_s: float = 0.02
) -> bool:
    """Poll until predicate() holds or the deadline passes; return whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def census(conn: duckdb.DuckDBPyConnection, root: Path) -> list[str]:
    """Compare the index with the disk; return every disagreement (empty means consistent).

    - every eligible file on disk has a file_index row with its content hash and its data rows;
    - every unparsable file is 'error' with a reason;
    - no primary key is duplicated;
    - nothing is pending;
    - no row exists for a file that is gone, unless it is marked deleted.
    """
    problems: list[str] = []
    tracked = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT file_path, status, content_hash, error_message FROM file_index"
        ).fetchall()
    }
    on_disk: set[str] = set()
    expected_rows: dict[str, set[tuple[object, ...]]] = {t.name: set() for t in TABLES.values()}
    for path in sorted(root.rglob("*")):
        link = path.is_symlink()
        if not link and not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        rel = stored_path(name)  # a name that is not UTF-8 is stored escaped
        key = classify(rel)
        if key is None:
            continue
        on_disk.add(rel)
        row = tracked.get(rel)
        if row is None:
            problems.append(f"missing from file_index: {rel}")
            continue
        status, digest, message = row
        if link or rel != name:  # never followed, never read: skipped with the reason
            want = "symlink:" if link else "bad_name:"
            if status != "skipped" or not (message or "").startswith(want):
                problems.append(f"{rel}: status {status} message {message!r}, want {want}")
            continue
        if not key.is_indexed_kind:
            if status != "skipped":
                problems.append(f"{rel}: status {status}, want skipped")
            continue
        data = path.read_bytes()
        result = parse(key, data)
        if isinstance(result, ParsedFile):
            result = clamp_rows(result)[0]  # what no BIGINT holds is stored as NULL
            if status != "indexed":
                problems.append(f"{rel}: status {status}, want indexed ({message})")
            if digest != content_hash(data):
                problems.append(f"{rel}: content hash differs from disk")
            expected_rows[result.table.name].update(result.rows)
        elif status != "error" or not message:
            problems.append(f"{rel}: unparsable but status {status} message {message!r}")
    for rel, (status, _, _) in tracked.items():
        if rel not in on_disk and status != "deleted":
            problems.append(f"{rel}: gone from disk but status {status}")
        if status == "pending":
            problems.append(f"{rel}: still pending")
    for table in DATA_TABLES:
        pk = ", ".join(table.primary_key)
        dups = conn.execute(
            f"SELECT {pk}, count(*) FROM {table.name} GROUP BY {pk} HAVING count(*) > 1"
        ).fetchall()
        if dups:
            problems.append(f"{table.name}: duplicate keys {dups[:3]}")
        actual = set(conn.execute(f"SELECT * FROM {table.name}").fetchall())
        want = {_as_db_row(table.columns, r) for r in expected_rows[table.name]}
        if actual != want:
            problems.append(
                f"{table.name}: {len(want - actual)} rows missing or stale, "
                f"{len(actual - want)} unexpected"
            )
    return problems


def _as_db_row(columns: tuple[tuple[str, str], ...], row: tuple[object, ...]) -> tuple[object, ...]:
    import datetime as dt

    out: list[object] = []
    for (_, kind), value in zip(columns, row, strict=True):
        if kind == "TIMESTAMP" and isinstance(value, int):
            value = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=value)
        out.append(value)
    return tuple(out)


def hash_of(data: bytes) -> str:
    return content_hash(data)


class FakeClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DroppingWatcher(StorageWatcher):
    """A watcher that loses every event of a share of the paths (chosen by a hash of the path),
    as a lossy inotify would: the fault F3 injects."""

    ratio = 0.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0

    def _submit_keys(self, keys: list[FileKey]) -> None:
        kept = [k for k in keys if zlib.crc32(k.rel_path.encode()) % 1000 >= self.ratio * 1000]
        with self._lock:
            self.dropped += len(keys) - len(kept)
        super()._submit_keys(kept)


def drop_half_the_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every v2 started from now on watch with a DroppingWatcher."""
    monkeypatch.setattr(v2_module, "StorageWatcher", DroppingWatcher)


def kill_observer(watcher: StorageWatcher) -> None:
    """Stop the watcher's observer as if its thread had died; its health check must notice."""
    observer = watcher._observer
    if observer is not None:
        observer.stop()
        observer.join(5)


def children_running(pid: int, module: str) -> list[int]:
    """The pids of the children of `pid` whose command line names `module` (Linux: /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and module.encode() in cmdline:
            found.append(int(entry))
    return found


def exited(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever adopted it: it runs no more."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def read_worker_as_it_serves(report: str) -> str:
    """What the expression `report` is in a read worker (its own process, `read_worker.main`)
    at the moment it would start to serve; `report` may use gc, os and sys."""
    code = (
        "import gc, os, sys\n"
        "from indexer.pipeline import read_worker\n"
        f"read_worker.serve = lambda tasks, answers: sys.stderr.write(str({report}))\n"
        "tasks, _ = os.pipe()\n"
        "_, answers = os.pipe()\n"
        "sys.exit(read_worker.main([str(tasks), str(answers)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr.strip()


def read_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file read by reader.read_file, one by one, whose steps a test may hook: the batch
    reader's C library set aside."""
    monkeypatch.setattr(batch_read, "_FUNCTION", None)


def before_each_read(monkeypatch: pytest.MonkeyPatch, action: Callable[[str], None]) -> None:
    """Run action(path) as the reader is about to open a file to read its bytes (after its
    first lstat), then the real open: an action may change the file there, or raise what the
    disk would. Every file is then read by reader.read_file (read_in_python): the batch
    reader's C library has no such hook, and leaves every file it does not read plainly to
    read_file (tests/unit/test_batch_read.py)."""
    read_in_python(monkeypatch)
    real_open = reader._open

    def hooked(path: str) -> int:
        action(path)
        return real_open(path)

    monkeypatch.setattr(reader, "_open", hooked)
