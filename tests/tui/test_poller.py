"""The poller: one snapshot message at a time, coalesced, re-armed after completion, never
overlapping, failures shown, staleness flagged, and quitting never waits on the engine."""

from __future__ import annotations

import threading
import time

from textual.widgets import Static

from indexer.snapshot import IndexerSnapshot
from tests.tui.fakes import T0, FakeFacade, base_snapshot, make_app, settle
from tui.app import OcindexApp
from tui.messages import SnapshotFailed, SnapshotReady


class SlowFacade(FakeFacade):
    """snapshot() takes a while and counts how many calls overlap."""

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = threading.Event()
        self.release.set()
        self._count_lock = threading.Lock()

    def snapshot(self) -> IndexerSnapshot:
        with self._count_lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.release.wait(10)
            time.sleep(self.delay)
            return super().snapshot()
        finally:
            with self._count_lock:
                self.in_flight -= 1


def header(app: OcindexApp) -> str:
    main = app.query_one("#header-main", Static).visual
    badges = app.query_one("#header-badges", Static).visual
    return f"{main}\n{badges}"


def test_a_newer_snapshot_replaces_a_queued_one() -> None:
    old = SnapshotReady(base_snapshot())
    new = SnapshotReady(
        IndexerSnapshot(**{**_fields(base_snapshot()), "taken_at": T0 + 1})  # type: ignore[arg-type]
    )
    assert old.can_replace(new)
    assert not new.can_replace(old)
    assert SnapshotFailed("x").can_replace(new)
    assert not old.can_replace(SnapshotFailed("x"))


def _fields(snapshot: IndexerSnapshot) -> dict[str, object]:
    return {name: getattr(snapshot, name) for name in snapshot.__slots__}


async def test_polls_on_its_interval_without_overlap() -> None:
    facade = SlowFacade()
    app = OcindexApp(facade, poll_interval=0.01, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(5):
            app.poll_now()  # asked for while one is in flight: queued, not doubled
        await pilot.pause(0.4)
        polls = facade.names().count("snapshot")
        assert polls >= 3
        assert facade.most_in_flight == 1
        assert app.shown is not None


async def test_no_interval_means_no_timer(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert facade.names() == []
        app.poll_now()
        await settle(pilot)
        assert facade.names() == ["snapshot"]
        assert app.shown is not None


async def test_a_failed_snapshot_is_shown_once_then_cleared(facade: FakeFacade) -> None:
    facade.fail.add("snapshot")
    app = make_app(facade)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        app.poll_now()
        await settle(pilot)
        app.poll_now()
        await settle(pilot)
        assert "snapshot failed: snapshot exploded" in header(app)
        assert [n.message for n in app._notifications] == ["snapshot exploded"]
        facade.fail.clear()
        app.poll_now()
        await settle(pilot)
        assert "snapshot failed" not in header(app)
        assert "RUNNING" in header(app)


async def test_a_stale_snapshot_is_flagged(facade: FakeFacade) -> None:
    app = OcindexApp(facade, poll_interval=None, clock=lambda: T0 + 30)
    async with app.run_test(size=(120, 36)) as pilot:
        app.poll_now()
        await settle(pilot)
        assert "no update for 30s" in header(app)
        await pilot.press("p")
        await pilot.pause()
        assert "no update" not in header(app)  # frozen on purpose


async def test_quitting_does_not_wait_for_a_snapshot_in_flight() -> None:
    facade = SlowFacade(delay=0)
    app = OcindexApp(facade, poll_interval=0.01, clock=lambda: T0)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.05)
            facade.release.clear()  # the next snapshot() blocks inside the engine
            await pilot.pause(0.1)
            assert facade.in_flight == 1
            await pilot.press("q")
            await pilot.pause()
        assert not app.is_running
        assert facade.in_flight == 1
    finally:
        facade.release.set()
