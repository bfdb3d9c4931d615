"""The dashboard over the REAL engine: an IndexerService (v2, then v1) on a tmp storage root, a
real DuckDB file and a real watchdog watcher; no fakes. Pilot drives the keys; every wait is a
poll-until-deadline loop around `pilot.pause()`, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from indexer.kinds import classify
from indexer.metrics import AlertThresholds
from indexer.rollout import RolloutState
from indexer.service import IndexerService
from indexer.simulate import OpenCodeSimulator
from indexer.snapshot import IndexerSnapshot
from indexer.store.database import open_database
from tests.helpers import census, wait_until
from tests.tui.fakes import until
from tui.app import OcindexApp
from tui.panes.base import RowsTable
from tui.panes.header import AlertBanner, StatusHeader
from tui.panes.latency import LatencyHistogram
from tui.screens.confirm import ConfirmScreen

SIZE = (120, 36)

# watchdog warns when a folder made during its recursive setup gets its watch twice: harmless.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Callback with id .* already exists for watch:RuntimeWarning"
)


# ---- helpers --------------------------------------------------------------------------------


def disk_files(root: Path) -> set[str]:
    """Every path under the root that the indexer tracks (record files and skipped ones)."""
    out: set[str] = set()
    for path in root.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            if classify(rel) is not None:
                out.add(rel)
    return out


def db_paths(service: IndexerService, status: str | None = None) -> set[str]:
    """file_index paths (optionally of one status), read through the engine's own connection."""
    cursor = service.cursor()
    try:
        if status is None:
            rows = cursor.execute("SELECT file_path FROM file_index").fetchall()
        else:
            rows = cursor.execute(
                "SELECT file_path FROM file_index WHERE status = ?", [status]
            ).fetchall()
    finally:
        cursor.close()
    return {str(r[0]) for r in rows}


def idle(service: IndexerService, settle_s: float) -> bool:
    cur = service.current
    return cur is not None and cur.is_idle(settle_s)


def notices(app: OcindexApp) -> list[tuple[str, str]]:
    return [(n.message, n.severity) for n in app._notifications]


def banner_text(app: OcindexApp) -> str:
    return str(app.main.query_one(AlertBanner).visual)


def final_census(db_path: Path, root: Path) -> list[str]:
    conn = open_database(db_path, read_only=True)
    try:
        return census(conn, root)
    finally:
        conn.close()


async def quiesce(pilot: Pilot[Any]) -> None:
    """Stop the poller and let the snapshot in flight finish, so the service can be stopped:
    stop() waits for a snapshot in flight anyway (see the last test)."""
    app = pilot.app
    assert isinstance(app, OcindexApp)
    app._poll_interval = None  # _poll_finished re-arms no timer
    app._repoll = False
    if app._poll_timer is not None:
        app._poll_timer.stop()
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


@asynccontextmanager
async def dashboard(app: OcindexApp, **run_test: Any) -> AsyncIterator[Pilot[Any]]:
    """`app.run_test(...)` that leaves with the poller quiet, even when a check failed."""
    async with app.run_test(**run_test) as pilot:
        try:
            yield pilot
        finally:
            await quiesce(pilot)


async def confirm(pilot: Pilot[Any], key: str) -> None:
    """Press `key`, see the confirmation dialog, and say yes."""
    app = pilot.app
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), f"{key!r} asks first", 5)
    await pilot.press("y")
    await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "dialog closes", 5)


# ---- 1. pending → flush → latency → switch to v1, nothing lost ------------------------------


async def test_pending_flush_latency_and_switch_to_v1_lose_nothing(
    storage_root: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A one-minute window and no file cap: what the simulator writes waits in the open batch.
    monkeypatch.setenv("OCINDEX_WINDOW_MS", "60000")
    monkeypatch.setenv("OCINDEX_IDLE_SEAL_MS", "60000")
    monkeypatch.setenv("OCINDEX_MAX_BATCH_FILES", "100000")
    service = IndexerService(storage_root, db_path, cli_choice="v2", env={})
    service.start()
    try:
        app = OcindexApp(service, poll_interval=0.1)
        sim = OpenCodeSimulator(storage_root, seed=11)
        async with dashboard(app, size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: app.shown is not None, "the first snapshot")
            assert app.shown is not None and app.shown.active == "v2"

            # -- the simulator's files wait in the pending pane
            await asyncio.to_thread(sim.write_sessions, 1)
            first = disk_files(storage_root)
            assert len(first) > 50
            pending = app.pane(1)

            def all_pending() -> bool:
                snap = pending.snapshot
                return snap is not None and snap.pending_count == len(first)

            await until(pilot, all_pending, f"{len(first)} files in the pending pane")
            table = app.query_one("#pending-table", RowsTable)
            assert table.row_count == 50  # the snapshot carries the newest 50
            assert set(table.row_keys) <= first
            assert str(pending.border_subtitle).startswith(f"{len(first)} files")
            assert db_paths(service) == set()  # nothing committed while the window is open

            # -- f commits them
            await pilot.press("f")
            await until(pilot, lambda: db_paths(service) == first, "flush commits every file")
            await until(
                pilot,
                lambda: (
                    app.shown is not None
                    and app.shown.pending_count == 0
                    and sum(app.shown.totals.values()) == len(first)
                ),
                "a snapshot with nothing pending and every file in the totals",
            )
            assert any(m.startswith("Flushed ") for m, _ in notices(app))
            assert not table.row_keys and pending.border_subtitle == "nothing waiting"

            # -- the latency pane holds the flushed batch
            latency = app.pane(2)
            assert latency.snapshot is not None
            batches = latency.snapshot.recent_batches
            assert batches and sum(b.files for b in batches) >= len(first)
            assert all(b.indexer_version == "v2" and b.processing_ms > 0 for b in batches)
            assert str(latency.border_subtitle).startswith("last ")
            marks = str(app.query_one("#latency-marks", Static).visual)
            assert re.fullmatch(r"p50 [\d.,]+k?  p95 [\d.,]+k?  p99 [\d.,]+k? ms", marks), marks
            histogram = app.query_one(LatencyHistogram)
            assert len(histogram._samples) == len(batches)  # what the histogram bins

            # -- more files wait in v2's window, then v + y switches to v1 and hands them over
            await asyncio.to_thread(sim.write_sessions, 1)
            second = disk_files(storage_root) - first
            assert second

            def second_pending() -> bool:
                snap = pending.snapshot
                return snap is not None and snap.pending_count >= len(second)

            await until(pilot, second_pending, "the second session's files pending")
            await until(pilot, lambda: app.busy == "", "no action in flight")
            await confirm(pilot, "v")
            await until(
                pilot,
                lambda: (
                    service.active == "v1"
                    and app.busy == ""
                    and app.shown is not None
                    and app.shown.active == "v1"
                ),
                "the switch to v1 shown on screen",
                20,
            )
            switched = [m for m, sev in notices(app) if m.startswith("Switched to v1")]
            handed = re.search(r"(\d+) files handed over", switched[0]) if switched else None
            assert handed is not None, notices(app)
            assert int(handed.group(1)) >= len(second)  # v2's open batch went to v1

            # -- v1 indexes new writes too; wait until it is idle and the disk is in the index
            await asyncio.to_thread(sim.write_sessions, 1)
            everything = disk_files(storage_root)
            await until(
                pilot,
                lambda: db_paths(service) >= everything and idle(service, 0.5),
                "v1 indexes everything and goes idle",
                30,
            )
    finally:
        service.stop()
    assert final_census(db_path, storage_root) == []


# ---- 2. the poller reads while the writer commits at full speed -----------------------------


async def test_polling_at_full_write_speed_raises_no_lock_or_concurrency_error(
    storage_root: Path, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    service = IndexerService(storage_root, db_path, cli_choice="v2", env={})
    service.start()
    stop = threading.Event()
    sim = OpenCodeSimulator(storage_root, seed=22)
    # The simulator writes at full speed until the dashboard has polled 10 times and the engine
    # has committed 5 batches meanwhile (or a deadline passes): counted, not timed.
    writer = threading.Thread(target=sim.run, args=(0, 60.0, stop), name="test-sim", daemon=True)
    failures: list[str] = []
    seen: set[float] = set()
    polls: list[float] = []  # wall time of every snapshot the dashboard took
    real_snapshot = service.snapshot

    def counted_snapshot() -> IndexerSnapshot:
        snap = real_snapshot()  # the real engine; only counted
        polls.append(snap.taken_at)
        return snap

    service.snapshot = counted_snapshot  # type: ignore[method-assign]
    try:
        app = OcindexApp(service, poll_interval=0.05)
        async with dashboard(app, size=SIZE) as pilot:
            header = app.main.query_one(StatusHeader)
            # The app records a failed poll in the header's poll_error: catch every change.
            app.watch(header, "poll_error", lambda e: failures.append(e) if e else None, init=False)
            writer.start()

            def observe() -> None:
                if app.latest is not None:
                    seen.add(app.latest.taken_at)
                if app._poll_error:
                    failures.append(app._poll_error)

            def enough_while_writing() -> bool:
                current = service.current
                return len(polls) >= 10 and current is not None and current.stats().batches >= 5

            while writer.is_alive():
                observe()
                if enough_while_writing():
                    stop.set()
                await pilot.pause()
            writer.join()
            polls_while_writing = len(polls)

            def caught_up() -> bool:
                observe()
                return idle(service, 0.5)

            await until(pilot, caught_up, "the engine catches up with the simulator", 40)
            observe()
            stats = service.current.stats() if service.current is not None else None
            assert failures == [], failures
            assert header.poll_error == "" and app._poll_error == ""
            # the poller really ran alongside the writer, and its snapshots reached the screen
            assert polls_while_writing >= 10, f"only {polls_while_writing} polls while writing"
            assert len(seen) >= 3, f"only {len(seen)} distinct snapshots seen on screen"
            assert stats is not None and stats.db_errors == 0 and stats.fatal is None, stats
            assert stats.batches >= 5
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(10)
        service.stop()
    problems = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or r.exc_info
        or any(w in r.getMessage().lower() for w in ("lock", "conflict", "transaction"))
    ]
    assert problems == [], [f"{r.name}: {r.getMessage()}" for r in problems]
    assert final_census(db_path, storage_root) == []


# ---- 3. a burst of errors raises the banner; b rolls back ------------------------------------


async def test_error_burst_shows_the_banner_and_b_rolls_back(
    storage_root: Path, db_path: Path, tmp_path: Path
) -> None:
    folder = storage_root / "session" / "global"
    folder.mkdir(parents=True)
    service = IndexerService(
        storage_root,
        db_path,
        cli_choice="v2",
        env={},
        thresholds=AlertThresholds(error_rate=0.2, min_files=20),
    )
    service.start()
    try:
        app = OcindexApp(service, poll_interval=0.1)
        async with dashboard(app, size=SIZE, notifications=True) as pilot:
            banner = app.main.query_one(AlertBanner)
            await until(pilot, lambda: app.shown is not None, "the first snapshot")
            assert not banner.display

            # 40 corrupt files, an hour old: settled, so 'error' at once rather than 'pending'.
            # Made outside the root and renamed in, so the watcher sees each complete file.
            staging = tmp_path / "staging"
            staging.mkdir()
            hour_ago = time.time() - 3600
            names = [f"ses_{i:03d}corruptAbCdEfGhIjKlMn.json" for i in range(40)]
            for name in names:
                path = staging / name
                path.write_bytes(b'{"id": "ses_truncated", "title": ')
                os.utime(path, (hour_ago, hour_ago))
            for name in names:
                os.rename(staging / name, folder / name)

            await until(pilot, lambda: bool(banner.display), "the anomaly banner", 20)
            assert app.shown is not None and app.shown.alert is not None
            assert app.shown.alert.figure == "error rate"
            text = banner_text(app)
            assert "ALERT" in text and "error rate" in text and "20.0%" in text, text
            assert "press b to roll back" in text
            # every corrupt file is committed as an error before b (none is left to hand over)
            await until(pilot, lambda: len(db_paths(service, "error")) == 40, "40 error rows")

            await until(pilot, lambda: app.busy == "", "no action in flight")
            await confirm(pilot, "b")
            await until(
                pilot,
                lambda: (
                    service.active == "v1"
                    and app.busy == ""
                    and app.shown is not None
                    and app.shown.active == "v1"
                    and not banner.display
                ),
                "the rollback to v1 shown and the banner gone",
                20,
            )
            assert app.shown is not None and app.shown.rollout_percent == 0
            assert app.check_action("rollback", ()) is None  # nothing left to roll back
            assert any(m.startswith("v1 is now active") for m, _ in notices(app))
    finally:
        service.stop()

    state = RolloutState(db_path).load()
    assert state["rollout_percent"] == 0 and state["active_version"] == "v1"
    assert "error rate" in state["rollback_reason"] and "on alert" in state["rollback_reason"]
    conn = open_database(db_path, read_only=True)
    try:
        switches = conn.execute(
            "SELECT from_version, to_version, reason FROM switch_log"
        ).fetchall()
        assert [(a, b) for a, b, _ in switches] == [("v2", "v1")]
        assert "dashboard: b key on alert: error rate" in switches[0][2]
        assert census(conn, storage_root) == []
    finally:
        conn.close()


# ---- a product bug found on the way ----------------------------------------------------------


def snapshots_until(service: IndexerService, done: threading.Event, polls: list[int]) -> None:
    """Take snapshots back to back, as the dashboard's poll worker does, counting them."""
    while not done.is_set():
        try:
            service.snapshot()
            polls[0] += 1
        except Exception:  # after stop() a snapshot may fail: the dashboard shows that
            pass


def test_stop_while_a_snapshot_is_in_flight_does_not_raise(
    storage_root: Path, db_path: Path
) -> None:
    """What quitting the dashboard does: the poll worker may still be inside snapshot() when
    run_dashboard calls stop(). Here a thread polls back to back, as the worker does."""
    OpenCodeSimulator(storage_root, seed=5).write_sessions(2)
    raised: list[str] = []
    for _attempt in range(8):  # the race is hit nearly every time; 8 tries make it certain
        service = IndexerService(storage_root, db_path, cli_choice="v2", env={})
        service.start()
        done = threading.Event()
        polls = [0]
        poller = threading.Thread(
            target=snapshots_until, args=(service, done, polls), name="test-poller", daemon=True
        )
        poller.start()

        def three_polls(counts: list[int] = polls) -> bool:
            return counts[0] >= 3

        try:
            assert wait_until(three_polls, 10)
            try:
                service.stop()
            except Exception as exc:
                raised.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        finally:
            done.set()
            poller.join(10)
            if service.is_running:
                service.stop()  # the poller is gone now: this close succeeds
        if raised:
            break
    assert raised == []
