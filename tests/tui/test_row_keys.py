"""`y` copies the selected row's path and `o` opens it in $PAGER (a SQLite row as JSON, from a
temporary file removed afterwards); no row, no list or a missing file is a toast. Through Pilot.

Pilot's headless driver cannot suspend the app, so the tests that run the pager replace
`App.suspend` by a context that does nothing; the pager itself (a script recording its
argument and the file it was given) runs for real.
"""

from __future__ import annotations

import contextlib
import dataclasses
import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from indexer.simulate import SqliteSimulator
from indexer.snapshot import IndexerSnapshot, PendingFile
from indexer.sources.sqlite import SqliteSource
from indexer.sources.sqlite.document import row_document
from tests.tui.fakes import ERRORS, PENDING, STORAGE, FakeFacade, base_snapshot, make_app, until
from tests.tui.test_keys import start
from tui.app import OcindexApp
from tui.rowkeys import pager_command

SIZE = (120, 36)


class SourcesFacade(FakeFacade):
    """The fake engine, reading the given change sources (as IndexerService does)."""

    def __init__(self, snapshot: IndexerSnapshot, sources: tuple[object, ...] = ()) -> None:
        super().__init__(snapshot)
        self.sources = sources


def pending_of(root: Path, *keys: str) -> IndexerSnapshot:
    rows = tuple(PendingFile(k, "part", 0.1 * i, "event") for i, k in enumerate(keys))
    return dataclasses.replace(base_snapshot(), storage_root=str(root), pending=rows)


@pytest.fixture
def pager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$PAGER: a script that writes its arguments, then the file's bytes, to `record`."""
    record = tmp_path / "record"
    script = tmp_path / "pager.sh"
    script.write_text(
        "#!/bin/sh\n"
        "for last; do :; done\n"
        f'{{ printf "%s\\n" "$@"; cat "$last"; }} > {record}.tmp && mv {record}.tmp {record}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PAGER", f"{script} --record")
    return record


def no_suspend(app: OcindexApp, monkeypatch: pytest.MonkeyPatch) -> None:
    @contextlib.contextmanager
    def suspend() -> Iterator[None]:
        yield

    monkeypatch.setattr(app, "suspend", suspend)


def toasts(app: OcindexApp) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications]


async def test_y_copies_the_selected_path_of_pane_1_and_pane_4(facade: FakeFacade) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("1", "down", "y")
        await pilot.pause()
        first = sorted(PENDING, key=lambda p: (p.age_s, p.rel_path))
        assert app.clipboard == f"{STORAGE}/{first[1].rel_path}"
        assert ("Copied", app.clipboard) in toasts(app)
        await pilot.press("4", "y")
        await pilot.pause()
        assert app.clipboard == f"{STORAGE}/{ERRORS[0].rel_path}"


async def test_y_in_the_reconciler_pane_copies_a_found_file_and_a_row_key_as_is(
    facade: FakeFacade,
) -> None:
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("3", "y")
        await pilot.pause()
        found = facade.reconciles[0].found[0]
        assert app.clipboard == f"{STORAGE}/{found}"
        await pilot.press("r")  # the new scan's first found row is a SQLite row
        await start(pilot)
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard.startswith("sqlite:opencode.db:session_message/")


async def test_y_and_o_without_a_row_or_a_list_say_so_plainly(facade: FakeFacade) -> None:
    facade.base = dataclasses.replace(facade.base, pending=(), pending_count=0)
    app = make_app(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("1", "y", "o")
        await pilot.pause()
        assert toasts(app).count(("No row", "pane 1 (Pending) has no row to act on")) == 2
        await pilot.press("2", "y")
        await pilot.pause()
        assert any("pane 2 has no list" in message for _, message in toasts(app))
        assert app.clipboard == ""


async def test_o_opens_the_file_in_the_pager(
    tmp_path: Path, pager: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "part" / "msg_1" / "prt_1.json"
    target.parent.mkdir(parents=True)
    target.write_text('{"id": "prt_1"}')
    app = make_app(FakeFacade(pending_of(tmp_path, "part/msg_1/prt_1.json")))
    no_suspend(app, monkeypatch)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("1", "o")
        await until(pilot, pager.exists, "the pager to run")
        assert pager.read_text() == f'--record\n{target}\n{{"id": "prt_1"}}'
        assert ("Opened", str(target)) in toasts(app)


async def test_o_on_a_missing_file_is_a_toast(tmp_path: Path, pager: Path) -> None:
    app = make_app(FakeFacade(pending_of(tmp_path, "part/msg_1/prt_gone.json")))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("1", "o")
        await pilot.pause()
        gone = tmp_path / "part/msg_1/prt_gone.json"
        assert ("Open", f"{gone} is not there (deleted or moved)") in toasts(app)
        assert not pager.exists()


async def test_o_where_the_terminal_cannot_be_handed_over_is_a_toast(
    tmp_path: Path, pager: Path
) -> None:
    (tmp_path / "todo").mkdir()
    (tmp_path / "todo" / "ses_1.json").write_text("[]")
    app = make_app(FakeFacade(pending_of(tmp_path, "todo/ses_1.json")))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("1", "o")  # Pilot's headless driver cannot suspend
        await pilot.pause()
        assert ("Open", "this terminal cannot hand the screen to a pager") in toasts(app)
        assert not pager.exists()


async def test_o_on_a_sqlite_row_pages_its_json_document_then_removes_it(
    tmp_path: Path, pager: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "storage"
    with SqliteSimulator(root, seed=4, delete_share=0.0) as sim:
        sim.write_sessions(1)
    source = SqliteSource(sim.db_path, root)
    stamps = source.stamps()
    assert stamps is not None
    key = next(p for p in stamps.column("path").to_pylist() if ":part/" in p)
    facade = SourcesFacade(pending_of(root, key), (source,))
    app = make_app(facade)
    no_suspend(app, monkeypatch)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("1", "o")
        await until(pilot, lambda: ("Opened", f"{key} as JSON") in toasts(app), "the pager")
        first, paged, *rest = pager.read_text().split("\n", 2)
        assert first == "--record"
        assert Path(paged).name.startswith("ocindex-row-") and paged.endswith(".json")
        assert not Path(paged).exists(), "the temporary file was left behind"
        assert orjson.loads(rest[0]) == orjson.loads(row_document(source, key))


async def test_o_on_a_sqlite_row_no_source_holds_is_a_toast(tmp_path: Path, pager: Path) -> None:
    key = "sqlite:opencode.db:part/prt_1"
    app = make_app(FakeFacade(pending_of(tmp_path, key)))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("1", "o")
        want = ("Open", f"no SQLite store this engine reads holds {key}")
        await until(pilot, lambda: want in toasts(app), "the toast")
        assert not pager.exists()


def test_the_pager_command_is_pager_split_as_a_shell_would_else_less() -> None:
    path = Path("/tmp/a b.json")
    assert pager_command(path, {}) == ["less", "/tmp/a b.json"]
    assert pager_command(path, {"PAGER": ""}) == ["less", "/tmp/a b.json"]
    assert pager_command(path, {"PAGER": "less -R 'x y'"}) == ["less", "-R", "x y", str(path)]
