"""Attach mode over a fake remote (fixed data, fixed pid): the header's badge at 120x36 (SVG
snapshot), the keys dimmed with their reason while the process is gone, and an action that needs
the engine in this process dimmed while attached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import Static

from indexer.live.remote import Link
from tests.support.toasts import ToastsKept
from tests.tui.fakes import FakeFacade, frozen_clock, post_snapshot, settle
from tui import attach
from tui.palette import UNAVAILABLE, palette_commands
from tui.screens.ab import ABScreen

SnapCompare = Callable[..., bool]
DB = "/home/dev/.local/share/ocindex/index.duckdb"


class FakeRemote(FakeFacade):
    """The fake engine as another process would serve it: pid 4242, attached until lose()."""

    def __init__(self) -> None:
        super().__init__()
        self.current = Link("ocindex run", 4242, DB, True)

    def link(self) -> Link:
        return self.current

    def lose(self) -> None:
        self.current = Link("ocindex run", 4242, DB, False)


def attached_app(remote: FakeRemote | None = None) -> ToastsKept:
    return ToastsKept(remote or FakeRemote(), poll_interval=None, clock=frozen_clock)


def badge(app: ToastsKept) -> str:
    return str(app.main.query_one("#header-badges", Static).visual)


def test_the_attached_header_names_the_daemon(snap_compare: SnapCompare) -> None:
    assert snap_compare(attached_app(), terminal_size=(120, 36), run_before=post_snapshot())


async def test_the_header_says_attached_then_detached_with_a_toast_each_time() -> None:
    remote = FakeRemote()
    app = attached_app(remote)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await post_snapshot()(pilot)
        assert "attached to ocindex run (pid 4242)" in badge(app)
        assert app.toasts == []  # the first attachment needs no toast
        remote.lose()
        await post_snapshot()(pilot)
        assert "detached: ocindex run (pid 4242) is gone" in badge(app)
        assert app.titles() == ["Detached"]
        remote.current = Link("ocindex run", 5151, DB, True)
        await post_snapshot()(pilot)
        assert "attached to ocindex run (pid 5151)" in badge(app)
        assert app.titles() == ["Detached", "Attached again"]


async def test_while_detached_every_key_that_acts_on_the_engine_is_dimmed_and_says_why() -> None:
    remote = FakeRemote()
    app = attached_app(remote)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await post_snapshot()(pilot)
        remote.lose()
        await post_snapshot()(pilot)
        for key in ("f", "r", "v", "b", "plus"):
            await pilot.press(key)
            await settle(pilot)
        await pilot.press("4", "R")  # retry the selected error file
        await settle(pilot)
        assert "Retry" in app.titles()
        assert remote.actions() == []
        reasons = {message for title, message in app.toasts if title != "Detached"}
        assert reasons == {
            "detached: ocindex run (pid 4242) is gone: its keys act again once it answers"
        }
        titles = [title for title, *_ in palette_commands(app)]
        assert "Flush (f)" + UNAVAILABLE in titles and "Rescan (r)" + UNAVAILABLE in titles
        assert "A/B (a)" in titles  # reading the last figures needs nobody


async def test_attached_the_keys_act_on_the_remote_engine() -> None:
    remote = FakeRemote()
    app = attached_app(remote)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await post_snapshot()(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert remote.actions() == [("flush", ())]


async def test_an_action_that_needs_the_engine_in_this_process_is_dimmed_while_attached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(attach.IN_PROCESS_ONLY, "ab", "the A/B view reads this process's engine")
    app = attached_app()
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await post_snapshot()(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert not isinstance(app.screen, ABScreen)
        assert app.messages() == [
            "attached to ocindex run: the A/B view reads this process's engine"
        ]
        assert app.check_action("ab", ()) is None
        commands: dict[str, Any] = {title: help for title, help, *_ in palette_commands(app)}
        assert commands["A/B (a)" + UNAVAILABLE] == (
            "attached to ocindex run: the A/B view reads this process's engine"
        )
