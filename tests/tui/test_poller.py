"""The poller: one snapshot message at a time, coalesced, re-armed after completion, never
overlapping, failures shown, staleness flagged, and quitting never waits on the engine."""

from __future__ import annotations

import dataclasses
import threading

from textual.widgets import Static

from indexer.snapshot import IndexerSnapshot
from tests.tui.fakes import T0, FakeFacade, base_snapshot, make_app, settle, until
from tui.app import OcindexApp
from tui.messages import SnapshotFailed, SnapshotReady


class GatedFacade(FakeFacade):
    """snapshot() waits for `release` inside the engine and counts how many calls overlap."""

    def __init__(self) -> None:
        super().__init__()
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
            return super().snapshot()
        finally:
            with self._count_lock:
                self.in_flight -= 1

    def polls(self) -> int:
        return self.names().count("snapshot")


def header(app: OcindexApp) -> str:
    main = app.query_one("#header-main", Static).visual
    badges = app.query_one("#header-badges", Static).visual
    return f"{main}\n{badges}"


def test_a_newer_snapshot_replaces_a_queued_one() -> None:
    old = SnapshotReady(base_snapshot())
    new = SnapshotReady(dataclasses.replace(base_snapshot(), taken_at=T0 + 1))
    assert old.can_replace(new)
    assert not new.can_replace(old)
    assert SnapshotFailed("x").can_replace(new)
    assert not old.can_replace(SnapshotFailed("x"))


async def test_polls_on_its_interval_without_overlap() -> None:
    facade = GatedFacade()
    facade.release.clear()  # the first snapshot stays inside the engine
    app = OcindexApp(facade, poll_interval=0.01, clock=lambda: T0)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: facade.in_flight == 1, "the first snapshot", 10)
            for _ in range(5):
                app.poll_now()  # asked for while one is in flight: queued, not doubled
            await pilot.pause()
            facade.release.set()
            await until(pilot, lambda: facade.polls() >= 3, "the interval re-arms the poll", 10)
            assert facade.most_in_flight == 1
            assert app.shown is not None
            facade.release.clear()  # no snapshot lands while the app closes
            await until(pilot, lambda: facade.in_flight == 1, "the poller is held", 10)
    finally:
        facade.release.set()


async def test_polls_asked_for_during_one_in_flight_coalesce_into_one() -> None:
    facade = GatedFacade()
    app = OcindexApp(facade, poll_interval=None, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        facade.release.clear()
        app.poll_now()
        await until(pilot, lambda: facade.in_flight == 1, "the first snapshot", 10)
        for _ in range(5):
            app.poll_now()
        facade.release.set()
        await settle(pilot)
        assert facade.polls() == 2
        assert facade.most_in_flight == 1


async def test_without_an_interval_the_app_polls_only_when_asked(facade: FakeFacade) -> None:
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
    facade = GatedFacade()
    facade.release.clear()  # every snapshot() blocks inside the engine
    app = OcindexApp(facade, poll_interval=0.01, clock=lambda: T0)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: facade.in_flight == 1, "a snapshot in flight", 10)
            await pilot.press("q")
            await pilot.pause()
        assert not app.is_running
        assert facade.in_flight == 1
    finally:
        facade.release.set()
