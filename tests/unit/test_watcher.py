"""The watcher's choice of events: a real observer on a real tree, its submissions recorded."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.kinds import FileKey
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.watcher import StorageWatcher, new_observer, written_later
from tests.helpers import wait_until

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")


class Submitted:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lost: list[str] = []
        self._lock = threading.Lock()

    def submit(self, keys: list[FileKey], trigger: Trigger) -> None:
        with self._lock:
            self.paths.extend(k.rel_path for k in keys)

    def count(self, rel: str) -> int:
        with self._lock:
            return self.paths.count(rel)


@pytest.fixture(params=["inline", "watchdog"])
def watched(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, StorageWatcher, Submitted]]:
    """A watcher on a tree with one session's folder, by each observer: the one handling events
    on watchdog's inotify thread (Linux's default) and watchdog's own (elsewhere)."""
    if request.param == "watchdog":
        from indexer.pipeline import watcher as watcher_module

        monkeypatch.setattr(watcher_module, "new_observer", watcher_module.watchdog_observer)
    root = tmp_path / "storage"
    (root / "message" / "ses_1").mkdir(parents=True)
    seen = Submitted()
    watcher = StorageWatcher(root, seen.submit, seen.lost.append)
    watcher.start()
    try:
        yield root, watcher, seen
    finally:
        watcher.stop()


def write_in_writes(path: Path, chunks: list[bytes]) -> None:
    """One open, several write() calls, one close: one modify event per write on inotify."""
    with open(path, "wb", buffering=0) as fh:
        for chunk in chunks:
            fh.write(chunk)


@linux_only
def test_new_observer_reports_close_after_write_on_linux() -> None:
    observer, closes = new_observer()
    try:
        assert closes
    finally:
        observer.on_thread_stop()


@linux_only
def test_a_file_written_in_many_writes_is_submitted_once_when_closed(
    watched: tuple[Path, StorageWatcher, Submitted],
) -> None:
    root, watcher, seen = watched
    rel = "message/ses_1/msg_1.json"
    with open(root / rel, "wb", buffering=0) as fh:
        assert wait_until(lambda: watcher.get_stats().events == 1, 5)  # its creation, handled
        assert seen.count(rel) == 0  # empty with one link: its close will tell
        for chunk in (b'{"id": ', b'"msg_1", ', b'"role": "user"}'):
            fh.write(chunk)
    assert wait_until(lambda: seen.count(rel) >= 1, 5)
    write_in_writes(root / rel, [b'{"id": ', b'"msg_1", ', b'"role": "assistant"}'])
    assert wait_until(lambda: seen.count(rel) >= 2, 5)
    marker = "message/ses_1/msg_marker.json"
    (root / marker).touch()  # one inotify queue: its create and close come after the rest
    assert wait_until(lambda: seen.count(marker) == 1, 5)
    # Created empty, then one close per write: the creation and the six writes add nothing.
    assert seen.count(rel) == 2
    assert watcher.get_stats().events == 5  # created, closed, closed; the marker's two


def test_a_symlink_created_while_watched_is_submitted(
    watched: tuple[Path, StorageWatcher, Submitted], tmp_path: Path
) -> None:
    root, _, seen = watched
    rel = "message/ses_1/msg_link.json"
    os.symlink(tmp_path / "elsewhere.json", root / rel)  # no close event will ever come
    assert wait_until(lambda: seen.count(rel) == 1, 5)


def test_a_file_moved_in_from_outside_the_root_is_submitted(
    watched: tuple[Path, StorageWatcher, Submitted], tmp_path: Path
) -> None:
    root, _, seen = watched
    outside = tmp_path / "msg_2.json"
    outside.write_bytes(b'{"id": "msg_2"}')
    os.rename(outside, root / "message/ses_1/msg_2.json")
    assert wait_until(lambda: seen.count("message/ses_1/msg_2.json") == 1, 5)


def test_a_hard_link_made_while_watched_is_submitted(
    watched: tuple[Path, StorageWatcher, Submitted], tmp_path: Path
) -> None:
    root, _, seen = watched
    source = tmp_path / "msg_3.json"
    source.write_bytes(b'{"id": "msg_3"}')
    os.link(source, root / "message/ses_1/msg_3.json")
    assert wait_until(lambda: seen.count("message/ses_1/msg_3.json") == 1, 5)


def test_a_folder_moved_out_of_the_root_asks_for_a_reconcile(
    watched: tuple[Path, StorageWatcher, Submitted], tmp_path: Path
) -> None:
    root, _, seen = watched
    (root / "message/ses_1/msg_4.json").write_bytes(b'{"id": "msg_4"}')
    os.rename(root / "message/ses_1", tmp_path / "ses_1")
    assert wait_until(lambda: bool(seen.lost), 5)


def test_written_later_is_true_only_for_an_empty_regular_file_with_one_link(
    tmp_path: Path,
) -> None:
    empty, full = tmp_path / "empty.json", tmp_path / "full.json"
    empty.write_bytes(b"")
    full.write_bytes(b"{}")
    os.symlink(empty, tmp_path / "link.json")
    os.link(empty, tmp_path / "twin.json")
    assert not written_later(os.fspath(tmp_path / "link.json"))
    assert not written_later(os.fspath(empty))  # two links now: it may be a link into place
    assert not written_later(os.fspath(full))
    (tmp_path / "twin.json").unlink()
    assert written_later(os.fspath(empty))
    assert written_later(os.fspath(tmp_path / "gone.json"))


@linux_only
def test_a_burst_of_events_is_submitted_in_a_few_calls_and_none_is_lost(tmp_path: Path) -> None:
    """While events wait in the observer's queue, their keys are held and go in one call."""
    root = tmp_path / "storage"
    folder = root / "part" / "msg_1"
    folder.mkdir(parents=True)
    calls: list[int] = []
    keys: list[str] = []
    first = threading.Event()
    release = threading.Event()

    def submit(batch: list[FileKey], trigger: Trigger) -> None:
        calls.append(len(batch))
        keys.extend(k.rel_path for k in batch)
        first.set()
        release.wait(30)  # the first call holds the dispatch thread while the burst queues

    watcher = StorageWatcher(root, submit, lambda why: None)
    watcher.start()
    try:
        (folder / "prt_first.json").write_bytes(b"{}")
        assert first.wait(10)
        for i in range(500):
            (folder / f"prt_{i:03d}.json").write_bytes(b"{}")
        observer = watcher._observer
        assert observer is not None
        assert wait_until(lambda: observer.event_queue.qsize() >= 400, 10)
        release.set()
        assert wait_until(lambda: len(set(keys)) == 501, 10)
    finally:
        release.set()
        watcher.stop()
    assert len(calls) <= 5, calls  # one per event would be 501


@linux_only
def test_a_folder_watched_already_is_not_added_again_but_one_made_anew_at_its_path_is(
    tmp_path: Path,
) -> None:
    from watchdog.observers.inotify_c import InotifyConstants

    from indexer.pipeline.inotify_watches import guard_watch_adds

    class Callback:  # what watchdog's inotify instance calls back
        def on_event(self, *args: object) -> None:
            pass

        def on_watch_deleted(self, *args: object) -> None:
            pass

    callback = Callback()
    observer, _ = new_observer()
    refused: list[bytes] = []
    guard_watch_adds(observer, lambda path, exc: refused.append(path))
    fd = getattr(observer, "_inotify_fd")  # noqa: B009  (a private attribute mypy cannot see)
    folder = tmp_path / "part"
    folder.mkdir()
    path, mask = os.fsencode(folder), InotifyConstants.IN_CREATE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # watchdog warns on a second add of the same id
            first = fd.add_callback(path, mask, callback, "group")
            assert fd.add_callback(path, mask, callback, "group") == first
        folder.rename(tmp_path / "moved")
        folder.mkdir()  # a new folder at the old path: its own watch
        assert fd.add_callback(path, mask, callback, "group") != first
        assert refused == []
    finally:
        fd.close()


@linux_only
def test_a_root_deleted_and_made_again_is_polled_then_watched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexer.pipeline import watcher as watcher_module

    monkeypatch.setattr(watcher_module, "REWATCH_AFTER_S", 0.5)  # a new observer soon
    root = tmp_path / "storage"
    (root / "message" / "ses_1").mkdir(parents=True)
    seen = Submitted()
    unwatched: list[tuple[str, ...]] = []
    watcher = StorageWatcher(root, seen.submit, seen.lost.append, 0.1, unwatched.append)
    watcher.start()
    try:
        shutil.rmtree(root)  # its watches go with it
        assert wait_until(lambda: ("",) in unwatched, 10)  # the reconciler polls the root
        (root / "message" / "ses_1").mkdir(parents=True)
        assert wait_until(lambda: watcher.get_stats().unwatched == (), 10)
        rel = "message/ses_1/msg_back.json"
        (root / rel).write_bytes(b"{}")
        assert wait_until(lambda: seen.count(rel) >= 1, 10)
        assert unwatched[-1] == ()
    finally:
        watcher.stop()


@linux_only
def test_on_linux_events_are_handled_on_the_inotify_reading_thread() -> None:
    from indexer.pipeline.inotify_inline import InlineObserver, available

    observer, closes = new_observer()
    try:
        assert available() and closes
        assert isinstance(observer, InlineObserver)
    finally:
        observer.on_thread_stop()


def test_a_file_renamed_in_the_root_is_submitted_at_both_paths(
    watched: tuple[Path, StorageWatcher, Submitted],
) -> None:
    root, _, seen = watched
    old, new = "message/ses_1/msg_5.json", "message/ses_1/msg_6.json"
    (root / old).write_bytes(b'{"id": "msg_5"}')
    assert wait_until(lambda: seen.count(old) >= 1, 5)
    before = seen.count(old)
    os.rename(root / old, root / new)
    assert wait_until(lambda: seen.count(new) >= 1 and seen.count(old) > before, 5)
    assert seen.lost == []


def test_a_folder_moved_within_the_root_submits_its_files_old_and_new_paths_and_stays_watched(
    watched: tuple[Path, StorageWatcher, Submitted],
) -> None:
    root, _, seen = watched
    (root / "part" / "msg_1" / "deep").mkdir(parents=True)
    files = ("part/msg_1/prt_1.json", "part/msg_1/deep/prt_2.json")
    for rel in files:
        (root / rel).write_bytes(b"{}")
    assert wait_until(lambda: all(seen.count(rel) >= 1 for rel in files), 5)
    before = {rel: seen.count(rel) for rel in files}
    os.rename(root / "part" / "msg_1", root / "part" / "msg_2")
    moved = [rel.replace("msg_1", "msg_2") for rel in files]
    assert wait_until(lambda: all(seen.count(rel) >= 1 for rel in moved), 5)
    assert wait_until(lambda: all(seen.count(r) > before[r] for r in files), 5)  # now gone
    assert seen.lost == []
    later = "part/msg_2/deep/prt_3.json"  # the moved folders keep their watches, re-pathed
    (root / later).write_bytes(b"{}")
    assert wait_until(lambda: seen.count(later) >= 1, 5)
    assert seen.count("part/msg_1/deep/prt_3.json") == 0


def test_a_folder_moved_in_from_outside_is_listed_and_watched(
    watched: tuple[Path, StorageWatcher, Submitted], tmp_path: Path
) -> None:
    root, _, seen = watched
    outside = tmp_path / "ses_9"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "msg_1.json").write_bytes(b'{"id": "msg_1"}')
    os.rename(outside, root / "message" / "ses_9")
    assert wait_until(lambda: seen.count("message/ses_9/sub/msg_1.json") >= 1, 5)
    later = "message/ses_9/sub/msg_2.json"
    (root / later).write_bytes(b'{"id": "msg_2"}')
    assert wait_until(lambda: seen.count(later) >= 1, 5)
