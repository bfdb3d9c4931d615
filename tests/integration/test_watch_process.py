"""The watcher in a process of its own: real child processes, real inotify, real files; what it
submits, tells and logs reaches the indexer, and no child outlives its parent."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.kinds import FileKey, FileKind
from indexer.pipeline import watch_process
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.pipeline.watch_process import WatcherProcess
from indexer.pipeline.watcher import StorageWatcher
from tests.faults.support import Spawned, cli
from tests.helpers import children_running, exited, wait_until, write

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify, /proc")


class Told:
    """What the watcher process hands on, recorded from its relay thread."""

    def __init__(self) -> None:
        self.keys: list[FileKey] = []
        self.triggers: set[Trigger] = set()
        self.lost: list[str] = []
        self.unwatched: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def submit(self, keys: list[FileKey], trigger: Trigger) -> None:
        with self._lock:
            self.keys.extend(keys)
            self.triggers.add(trigger)

    def paths(self) -> list[str]:
        with self._lock:
            return [k.rel_path for k in self.keys]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "storage"
    (folder / "message" / "ses_1").mkdir(parents=True)
    return folder


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
def watching(root: Path, told: Told) -> Iterator[WatcherProcess]:
    watcher = WatcherProcess(root, told.submit, told.lost.append, told.unwatched.append)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()


REL = "message/ses_1/msg_1.json"


def status_of(v2: UnifiedIndexerV2, rel: str) -> str | None:
    cursor = v2.cursor()
    try:
        row = cursor.execute("SELECT status FROM file_index WHERE file_path = ?", [rel]).fetchone()
        return None if row is None else str(row[0])
    finally:
        cursor.close()


@linux_only
def test_a_file_written_in_the_tree_reaches_the_parent_as_its_key(
    root: Path, told: Told, watching: WatcherProcess
) -> None:
    assert watching.pid is not None and watching.pid != os.getpid()
    write(root, REL, b'{"id": "msg_1"}')
    assert wait_until(lambda: REL in told.paths(), 10)
    key = next(k for k in told.keys if k.rel_path == REL)
    assert (key.kind, key.record_id, key.parent_id) == (FileKind.MESSAGE, "msg_1", "ses_1")
    assert told.triggers == {Trigger.WATCHER}
    assert wait_until(lambda: watching.get_stats().events >= 1, 5)


@linux_only
def test_a_child_killed_is_started_again_with_a_reconcile_and_watches_on(
    root: Path, told: Told, watching: WatcherProcess, caplog: pytest.LogCaptureFixture
) -> None:
    first = watching.pid
    assert first is not None
    with caplog.at_level(logging.WARNING, logger=watch_process.__name__):
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: "watcher process restarted" in told.lost, 30)
    assert watching.pid not in (None, first)
    assert "its process ended (exit -9)" in caplog.text
    assert watching.get_stats().restarts == 1
    write(root, REL, b'{"id": "msg_1"}')
    assert wait_until(lambda: REL in told.paths(), 10)


@linux_only
def test_a_sigterm_to_the_whole_group_leaves_the_stop_to_the_indexer(
    root: Path, told: Told, watching: WatcherProcess
) -> None:
    pid = watching.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)  # as a service manager stopping the group would
    write(root, REL, b'{"id": "msg_1"}')
    assert wait_until(lambda: REL in told.paths(), 10)
    assert watching.pid == pid and watching.get_stats().restarts == 0 and told.lost == []


@linux_only
def test_stop_ends_the_child_and_hands_on_what_it_held(root: Path, told: Told) -> None:
    watcher = WatcherProcess(root, told.submit, told.lost.append)
    watcher.start()
    pid = watcher.pid
    assert pid is not None
    rels = [f"message/ses_1/msg_{i}.json" for i in range(200)]
    for rel in rels:
        write(root, rel, b"{}")
    assert wait_until(lambda: set(rels) <= set(told.paths()), 20)
    watcher.stop()
    assert exited(pid) and watcher.pid is None
    assert told.lost == []  # a stop is not a loss


@linux_only
def test_what_the_child_logs_and_its_unwatched_root_reach_the_parent(
    tmp_path: Path, told: Told, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "not-there"  # the child cannot watch it: it says so and polls
    watcher = WatcherProcess(missing, told.submit, told.lost.append, told.unwatched.append)
    with caplog.at_level(logging.WARNING):
        watcher.start()
        try:
            assert wait_until(lambda: ("",) in told.unwatched, 10)
            assert wait_until(lambda: "cannot watch the storage root" in caplog.text, 10)
            assert watcher.get_stats().unwatched == ("",)
        finally:
            watcher.stop()


def test_a_watcher_process_that_cannot_start_leaves_v2_watching_in_its_own(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(watch_process.sys, "executable", str(tmp_path / "no-python"))
    v2 = UnifiedIndexerV2(root, tmp_path / "index.duckdb", config=V2Config(watch_process=True))
    with caplog.at_level(logging.WARNING):
        v2.start()
    try:
        assert isinstance(v2.watcher, StorageWatcher)
        assert "no process of its own" in caplog.text
        write(root, REL, b'{"id": "msg_1", "sessionID": "ses_1", "role": "user"}')
        assert wait_until(lambda: status_of(v2, REL) == "indexed", 20)
    finally:
        v2.stop()


@linux_only
def test_v2_with_its_watcher_in_a_process_indexes_what_is_written(
    root: Path, tmp_path: Path
) -> None:
    v2 = UnifiedIndexerV2(root, tmp_path / "index.duckdb", config=V2Config(watch_process=True))
    v2.start()
    try:
        assert isinstance(v2.watcher, WatcherProcess)
        write(root, REL, b'{"id": "msg_1", "sessionID": "ses_1", "role": "user"}')
        assert wait_until(lambda: status_of(v2, REL) == "indexed", 20)
        stats = v2.stats().watcher
        assert stats is not None and stats.events >= 1
    finally:
        v2.stop()
    assert not children_running(os.getpid(), "indexer.pipeline.watch_process")


@linux_only
def test_no_watcher_process_outlives_ocindex_run_killed_with_sigkill(
    root: Path, tmp_path: Path
) -> None:
    daemon = Spawned(
        cli("run", "--storage", root, "--db", tmp_path / "i.duckdb", "--indexer", "v2")
    )
    try:
        daemon.wait_for("v2 started on", timeout_s=60)
        children = children_running(daemon.pid, "indexer.pipeline.watch_process")
        assert len(children) == 1, daemon.log()
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait()
        assert wait_until(lambda: exited(children[0]), 20)
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def test_the_child_exits_when_its_stdin_closes(root: Path) -> None:
    read_end, write_end = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", watch_process.__name__, str(root), str(write_end)],
        pass_fds=(write_end,),
        stdin=subprocess.PIPE,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as messages:
            assert messages.read(1)  # it speaks: "ready"
            assert child.stdin is not None
            child.stdin.close()
            assert child.wait(20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
