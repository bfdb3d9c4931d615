"""Attach mode against a REAL daemon: `ocindex run` in a subprocess on a simulator tree, the
dashboard a client of it through the socket. Its header names the daemon, `f` and `v` act on
the daemon (checked through the daemon's own status), the last figures stay when it goes away,
and the dashboard attaches again when a daemon serves the database. Every wait polls a deadline.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from indexer.live.client import reach
from indexer.live.remote import RemoteService, attach
from indexer.simulate import OpenCodeSimulator
from tests.faults.support import Spawned, census_of, cli, spawned
from tests.support.toasts import ToastsKept
from tests.tui.fakes import until
from tui.app import OcindexApp
from tui.screens.confirm import ConfirmScreen

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

SIZE = (120, 36)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "storage"
    OpenCodeSimulator(path, seed=5).write_sessions(1)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.duckdb"


@pytest.fixture
def slow_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's batches wait a minute (and never fill), so files stay pending until `f`."""
    monkeypatch.setenv("OCINDEX_WINDOW_MS", "60000")
    monkeypatch.setenv("OCINDEX_IDLE_SEAL_MS", "60000")
    monkeypatch.setenv("OCINDEX_MAX_BATCH_FILES", "100000")


def start_daemon(root: Path, db: Path) -> Spawned:
    child = Spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2"))
    child.wait_for("live query endpoint on", timeout_s=60)
    return child


@pytest.fixture
def daemon(root: Path, db: Path, slow_window: None) -> Iterator[Spawned]:
    with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as child:
        child.wait_for("live query endpoint on", timeout_s=60)
        yield child


def live(db: Path) -> dict[str, Any]:
    """The daemon's own figures, through a client of its own (not the dashboard's)."""
    client = reach(db)
    assert client is not None, "no daemon answers"
    try:
        figures: dict[str, Any] = client.status(3600)["report"]["live"]
        figures["tracked"] = client.query("select count(*) n from file_index").table.to_pylist()
        return figures
    finally:
        client.close()


def badge(app: OcindexApp) -> str:
    return str(app.main.query_one("#header-badges", Static).visual)


async def quiet(pilot: Pilot[Any]) -> None:
    """No poll re-armed, none in flight: the remote can be stopped."""
    app = pilot.app
    assert isinstance(app, OcindexApp)
    app._poll_interval = None
    app._repoll = False
    if app._poll_timer is not None:
        app._poll_timer.stop()
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def test_the_dashboard_attached_to_a_daemon_acts_on_it_and_survives_its_restart(
    root: Path, db: Path, daemon: Spawned
) -> None:
    remote = attach(db)
    assert isinstance(remote, RemoteService)
    files = sum(1 for p in root.rglob("*") if p.is_file())
    app = ToastsKept(remote, poll_interval=0.2)
    second: Spawned | None = None
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            try:
                await until(pilot, lambda: app.shown is not None, "the daemon's first snapshot")
                assert f"attached to ocindex run (pid {daemon.pid})" in badge(app)
                await until(
                    pilot,
                    lambda: app.shown is not None and app.shown.pending_count == files,
                    f"the daemon's {files} files pending in its minute-long window",
                )
                assert live(db)["tracked"] == [{"n": 0}]

                # -- f flushes the daemon's open batch
                await pilot.press("f")
                await until(pilot, lambda: live(db)["tracked"] == [{"n": files}], "f commits")
                assert live(db)["pending_files"] == 0
                await until(
                    pilot,
                    lambda: any(m.startswith("Flushed ") for m in app.messages()),
                    "the daemon's answer as a toast",
                )

                # -- v + y switches the daemon to v1
                await until(pilot, lambda: app.busy == "", "no action in flight")
                await pilot.press("v")
                await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "v asks", 5)
                await pilot.press("y")
                await until(pilot, lambda: live(db)["active"] == "v1", "the daemon on v1", 30)
                await until(
                    pilot,
                    lambda: app.shown is not None and app.shown.active == "v1",
                    "v1 in the dashboard",
                )
                shown = app.shown
                assert shown is not None

                # -- the daemon stops: the last figures stay, the header says so
                daemon.signal(signal.SIGTERM)
                assert await asyncio.to_thread(daemon.wait, 120) == 0, daemon.log()
                await until(pilot, lambda: "is gone" in badge(app), "the header says detached")
                assert f"detached: ocindex run (pid {daemon.pid}) is gone" in badge(app)
                assert app.shown is not None and app.shown.running is False
                assert app.shown.totals == shown.totals
                assert app.why_unavailable("flush").startswith("detached: ocindex run")
                await pilot.press("f")  # dimmed: says why, asks nothing of anybody
                await until(
                    pilot, lambda: any("act again once" in m for m in app.messages()), "why f"
                )

                # -- a daemon serves the database again: attached to it
                second = await asyncio.to_thread(start_daemon, root, db)
                await until(
                    pilot,
                    lambda: f"attached to ocindex run (pid {second.pid})" in badge(app),
                    "attached to the new daemon",
                    30,
                )
                await until(
                    pilot,
                    lambda: app.shown is not None and app.shown.running,
                    "the new daemon's figures",
                )
                assert app.why_unavailable("flush") == ""
            finally:
                await quiet(pilot)
    finally:
        remote.stop()
        if second is not None:
            second.signal(signal.SIGTERM)
            assert second.wait(120) == 0, second.log()
            second.kill()
    assert census_of(db, root) == []
