"""The header says in plain words when the index writer cannot write or folders go unwatched."""

from __future__ import annotations

import dataclasses

from textual.widgets import Static

from indexer.health import Health, health_notice
from tests.tui.fakes import FakeFacade, base_snapshot, make_app, settle


async def test_the_header_shows_a_paused_writer_and_unwatched_folders() -> None:
    condition = "the database was invalidated (No space left on device); reopening it"
    notice = health_notice(Health(condition=condition, unwatched_folders=3))
    facade = FakeFacade(dataclasses.replace(base_snapshot(), message=notice))
    app = make_app(facade)
    async with app.run_test(size=(200, 30)) as pilot:
        app.poll_now()
        await settle(pilot)
        text = str(app.query_one("#header-main", Static).visual)
        assert "index writer paused" in text
        assert "No space left on device" in text
        assert "3 folders not watched (inotify limit): polled every 2 s" in text
