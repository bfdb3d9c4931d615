"""F25: the kernel refuses inotify watches (fs.inotify.max_user_watches reached).

Lowering the real limit needs a root sysctl that would hit every process on a shared machine,
so the refusal is simulated where the kernel gives it: `inotify_add_watch` returns -1 with
errno ENOSPC for chosen paths (tests/faults/_driver.py refuse_watches), and watchdog runs as it
would. A folder that cannot be watched is logged once with the limit and the fix, counted in
the watcher's stats, and polled every few seconds, so a file written there later lands without
waiting for the next full reconcile. A root that cannot be watched leaves `run` polling, with
a warning and no traceback. A new observer is tried every minute (or 20 times as long as the
last one took to start); once every folder is watched again the polling stops. Past the limit
by thousands of folders, the count is said once and the whole tree is polled.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import orjson
import pytest

from indexer.pipeline import watcher as watcher_module
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import POLLED_FOLDERS_MAX, Reconciler, ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from indexer.store.database import open_database
from indexer.store.schema import migrate
from tests.faults._driver import refuse_watches
from tests.faults.support import (
    census_of,
    driver,
    poll,
    running_v2,
    settle,
    spawned,
    status_of,
    write_now,
)
from tests.helpers import FakeClock

UNWATCHED = "part/msg_nowatch"


def part(pid: str) -> bytes:
    return orjson.dumps({"id": pid, "type": "text", "text": f"hello from {pid}"})


def test_a_folder_that_cannot_be_watched_is_logged_counted_and_polled(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from watchdog.observers import inotify_c

    real_add_watch = inotify_c.inotify_add_watch
    monkeypatch.setattr(inotify_c, "inotify_add_watch", real_add_watch)
    monkeypatch.setattr(watcher_module, "REWATCH_AFTER_S", 2.0)  # a new observer soon
    refuse_watches(b"msg_nowatch")
    # A full reconcile only every 5 minutes: what lands in time was polled (or watched).
    config = V2Config(
        processor=ProcessorConfig(settle_s=0.2),
        reconciler=ReconcilerConfig(interval_s=300, unwatched_poll_s=0.5),
    )
    with caplog.at_level(logging.WARNING), running_v2(root, db, config) as v2:
        assert v2.watcher is not None
        cursor = v2.cursor()
        try:
            (root / UNWATCHED).mkdir(parents=True)
            poll(lambda: v2.watcher is not None and v2.watcher.get_stats().refused_watches == 1,
                 20, "the refused watch counted")  # fmt: skip
            stats = v2.watcher.get_stats()
            assert stats.unwatched == (UNWATCHED,)
            later = f"{UNWATCHED}/prt_later.json"
            write_now(root / later, part("prt_later"))  # no event can come from there
            write_now(root / "part/msg_1/prt_watched.json", part("prt_watched"))
            poll(lambda: status_of(cursor, later) == "indexed", 20, "the unwatched file polled")
            poll(
                lambda: status_of(cursor, "part/msg_1/prt_watched.json") == "indexed",
                20,
                "a watched file indexed",
            )
            os.unlink(root / later)  # a deletion there is polled too
            poll(lambda: status_of(cursor, later) == "deleted", 20, "the deletion polled")
            assert v2.reconciler is not None
            assert v2.reconciler.get_stats().scans_completed == 1  # only the startup scan
            # The limit is raised: the next observer watches every folder, and says so.
            inotify_c.inotify_add_watch = real_add_watch
            poll(lambda: v2.watcher is not None and v2.watcher.get_stats().unwatched == (),
                 20, "every folder watched again")  # fmt: skip
            again = f"{UNWATCHED}/prt_again.json"
            write_now(root / again, part("prt_again"))
            poll(lambda: status_of(cursor, again) == "indexed", 20, "a file there indexed")
        finally:
            cursor.close()
        settle(v2)
    messages = [r.getMessage() for r in caplog.records]
    lines = [m for m in messages if "cannot watch" in m]
    assert len(lines) == 1, lines  # said once, though refused again at each new observer
    assert any("every folder is watched again" in m for m in messages)
    assert UNWATCHED in lines[0] and "max_user_watches" in lines[0] and "sysctl" in lines[0]
    assert census_of(db, root) == []


def test_run_polls_when_the_root_itself_cannot_be_watched(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refusal is injected in the driver's process: the watcher must run there too. How a
    # watcher process hands on an unwatched root: tests/integration/test_watch_process.py.
    monkeypatch.setenv("OCINDEX_WATCHER_PROCESS", "0")
    argv = ["-v", "run", "--storage", root, "--db", db, "--indexer", "v2"]
    spec = {"mode": "cli", "argv": argv, "refuse_watches": os.fspath(root)}
    with spawned(driver(spec)) as child:
        at = child.wait_for("cannot watch the storage root", 60)
        child.wait_for("running v2", 60)
        write_now(root / "part/msg_1/prt_polled.json", part("prt_polled"))
        child.wait_for("unwatched folder(s): 1 files submitted", 30, after=at)
        child.signal(signal.SIGTERM)
        rc = child.wait(60)
    assert rc == 0, child.log()
    assert "Traceback" not in "\n".join(child.err)
    assert census_of(db, root) == []


def test_thousands_of_refused_folders_are_said_once_counted_and_told_in_few_calls(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A long history past the limit: 250,000 message folders for a million files. Each refusal
    # once sorted every refused folder, told the reconciler and logged a line: minutes of CPU
    # and a flooded log, and a daemon that did not stop on Ctrl-C.
    from watchdog.observers import inotify_c

    monkeypatch.setattr(inotify_c, "inotify_add_watch", inotify_c.inotify_add_watch)
    refuse_watches(b"msg_nowatch")
    for m in range(3000):
        (root / "part" / f"msg_nowatch_{m:04d}").mkdir(parents=True)
    told: list[tuple[str, ...]] = []
    watcher = watcher_module.StorageWatcher(
        root, lambda *_: None, lambda _: None, health_interval_s=0.1, on_unwatched=told.append
    )
    with caplog.at_level(logging.WARNING):
        watcher.start()
        try:
            poll(lambda: len(told) > 0 and len(told[-1]) == 3000, 20, "every refusal told")
            poll(lambda: any("3000 folders" in r.getMessage() for r in caplog.records), 20,
                 "the count said")  # fmt: skip
            stats = watcher.get_stats()
            assert stats.refused_watches == len(stats.unwatched) == 3000
        finally:
            watcher.stop()
    # The refusals all come while the observer starts, before the health thread's first look:
    # the reconciler is told once, with every folder (3,000 calls before).
    assert [len(t) for t in told] == [3000]
    lines = [r.getMessage() for r in caplog.records if "watch" in r.getMessage()]
    assert len(lines) == 2, lines  # the first folder named, then the count
    assert "cannot watch the folder part/msg_nowatch_" in lines[0]
    assert "3000 folders cannot be watched" in lines[1] and "max_user_watches" in lines[1]


def test_a_new_observer_refused_the_same_folders_says_nothing_new(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Past the limit each new observer (tried every minute) is refused the same folders again:
    # the count was said again each time, a warning a minute for as long as the daemon ran.
    from watchdog.observers import inotify_c

    monkeypatch.setattr(inotify_c, "inotify_add_watch", inotify_c.inotify_add_watch)
    monkeypatch.setattr(watcher_module, "REWATCH_AFTER_S", 0.2)
    monkeypatch.setattr(watcher_module, "REWATCH_COST_SHARE", 1)
    refuse_watches(b"msg_nowatch")
    for m in range(300):
        (root / "part" / f"msg_nowatch_{m:03d}").mkdir(parents=True)
    watcher = watcher_module.StorageWatcher(root, lambda *_: None, lambda _: None, 0.05)
    with caplog.at_level(logging.WARNING):
        watcher.start()
        try:
            poll(lambda: watcher.get_stats().restarts >= 3, 30, "three new observers tried")
        finally:
            watcher.stop()
    lines = [r.getMessage() for r in caplog.records if "watch" in r.getMessage()]
    assert len(lines) == 2, lines  # the first folder named, then the count, once
    assert "300 folders cannot be watched" in lines[1]


def test_more_unwatched_folders_than_are_polled_one_by_one_poll_the_whole_tree(
    root: Path, db: Path
) -> None:
    submitted: list[str] = []
    config = ReconcilerConfig(interval_s=300, unwatched_poll_s=0.1)
    conn = open_database(db)
    migrate(conn)
    try:
        reconciler = Reconciler(
            root, conn.cursor, lambda keys, _: submitted.extend(k.rel_path for k in keys), set,
            config,
        )  # fmt: skip
        reconciler.start()
        try:
            folders = tuple(f"part/msg_nowatch_{m:04d}" for m in range(POLLED_FOLDERS_MAX + 1))
            reconciler.set_unwatched(folders)
            write_now(root / "part/msg_elsewhere/prt_1.json", part("prt_1"))
            poll(lambda: "part/msg_elsewhere/prt_1.json" in submitted, 20, "the tree polled")
        finally:
            reconciler.stop()
    finally:
        conn.close()


def test_past_the_limit_new_observers_are_tried_less_often_and_at_once_when_it_is_raised(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each new observer past the limit re-adds every watch it can (192,530 here: seconds of the
    # watcher's CPU) and has the reconciler scan everything: once a minute, that was ~7% of a
    # core for a history of a million files, for as long as the limit stayed.
    from watchdog.observers import inotify_c

    real_add_watch = inotify_c.inotify_add_watch
    monkeypatch.setattr(inotify_c, "inotify_add_watch", real_add_watch)
    limit = ["8192"]
    monkeypatch.setattr(watcher_module, "watch_limit", lambda: limit[0])
    refuse_watches(b"msg_nowatch")
    (root / UNWATCHED).mkdir(parents=True)
    clock = FakeClock()
    watcher = watcher_module.StorageWatcher(
        root, lambda *_: None, lambda _: None, health_interval_s=0.02, monotonic=clock
    )
    watcher.start()
    try:
        assert watcher.get_stats().unwatched == (UNWATCHED,)
        for tries, wait_s in enumerate((60, 120, 240), start=1):
            assert watcher._rewatch_at == clock.now + wait_s  # the next try, doubled each time
            clock.advance(wait_s)
            poll(lambda n=tries: watcher.get_stats().restarts == n, 20, f"try {tries}")  # type: ignore[misc]
        # The limit raised: a new observer at once, though the clock has not moved.
        inotify_c.inotify_add_watch = real_add_watch
        limit[0] = "524288"
        poll(lambda: watcher.get_stats().restarts == 4, 20, "a try when the limit changed")
        assert watcher.get_stats().unwatched == ()
        assert watcher._refused_again == 0  # the next refusal waits a minute again
    finally:
        watcher.stop()
