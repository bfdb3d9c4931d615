"""run_dashboard: demo decision, default paths, error reporting, and stopping the engine."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.live.address import socket_path
from indexer.live.remote import RemoteService, attach
from indexer.live.server import LiveServer
from indexer.store.database import DatabaseError
from tests.support.live_host import Engine, FakeHost
from tests.tui.fakes import FakeFacade
from tui import entry
from tui.app import OcindexApp
from tui.attach import AttachedApp
from tui.entry import run_dashboard, stop_service


class FakeService:
    """Stands in for indexer.service: records how it was opened."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.opened: list[dict[str, Any]] = []
        self.facade = FakeFacade()

    def open_service(self, *, start: bool = True, **kwargs: Any) -> FakeFacade:
        self.opened.append(kwargs)
        if self.error is not None:
            raise self.error
        if start or kwargs["demo"]:  # as the real one: the demo is started inside
            self.facade.start()
        return self.facade


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeService:
    fake = FakeService()
    module = types.ModuleType("indexer.service")
    module.open_service = fake.open_service  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "indexer.service", module)
    monkeypatch.delenv("OCINDEX_STORAGE", raising=False)
    monkeypatch.delenv("OCINDEX_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return fake


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[OcindexApp]:
    """Replace App.run: record the app instead of taking over the terminal."""
    apps: list[OcindexApp] = []

    def run(self: OcindexApp, **kwargs: Any) -> None:
        apps.append(self)

    monkeypatch.setattr(OcindexApp, "run", run)
    return apps


def args(**overrides: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "storage": None,
        "db": None,
        "indexer": None,
        "demo": False,
        "opencode_db": None,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def test_no_storage_anywhere_means_demo(service: FakeService, ran: list[OcindexApp]) -> None:
    assert run_dashboard(args()) == 0
    assert service.opened == [
        {"storage_root": None, "db_path": None, "indexer": None, "demo": True, "opencode_db": None}
    ]
    assert len(ran) == 1 and ran[0].facade is service.facade
    assert service.facade.stopped


def test_existing_default_storage_is_indexed(
    service: FakeService, ran: list[OcindexApp], tmp_path: Path
) -> None:
    root = tmp_path / "data" / "opencode" / "storage"
    root.mkdir(parents=True)
    assert run_dashboard(args(indexer="v1")) == 0
    assert service.opened == [
        {
            "storage_root": root,
            "db_path": tmp_path / "data" / "ocindex" / "index.duckdb",
            "indexer": "v1",
            "demo": False,
            "opencode_db": None,
        }
    ]


def test_an_explicit_storage_is_never_replaced_by_the_demo(
    service: FakeService, ran: list[OcindexApp], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    db = tmp_path / "my.duckdb"
    assert run_dashboard(args(storage=missing, db=db)) == 0
    assert service.opened[0] == {
        "storage_root": missing,
        "db_path": db,
        "indexer": None,
        "demo": False,
        "opencode_db": None,
    }
    # Opened unstarted and started here, under the progress line of its first catch-up.
    assert service.facade.is_running


def test_the_demo_flag_wins_over_a_given_storage_and_db(
    service: FakeService, ran: list[OcindexApp], tmp_path: Path
) -> None:
    assert run_dashboard(args(storage=tmp_path, db=tmp_path / "x.duckdb", demo=True)) == 0
    assert service.opened[0]["demo"] is True
    assert service.opened[0]["storage_root"] is None and service.opened[0]["db_path"] is None


def test_an_error_opening_the_engine_is_reported_on_one_line(
    service: FakeService, ran: list[OcindexApp], capsys: pytest.CaptureFixture[str]
) -> None:
    service.error = DatabaseError("database /x/index.duckdb is in use by process 42 (python)")
    assert run_dashboard(args()) == 1
    err = capsys.readouterr().err
    assert err == "ocindex: error: database /x/index.duckdb is in use by process 42 (python)\n"
    assert ran == []


def test_the_engine_stops_even_when_the_app_crashes(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: OcindexApp, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(OcindexApp, "run", crash)
    with pytest.raises(RuntimeError):
        run_dashboard(args())
    assert service.facade.stopped


def test_a_hung_stop_is_abandoned_after_the_timeout(
    service: FakeService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    release = threading.Event()
    exits: list[int] = []

    class Hung(FakeFacade):
        def stop(self) -> None:
            release.wait(5)

    service.facade = Hung()
    monkeypatch.setattr(OcindexApp, "run", lambda self, **kwargs: None)
    monkeypatch.setattr(entry, "STOP_TIMEOUT_S", 0.05)
    monkeypatch.setattr(os, "_exit", exits.append)
    try:
        run_dashboard(args())
    finally:
        release.set()
    assert exits == [1]
    assert "did not stop" in capsys.readouterr().err


def test_stop_service_reports_a_failing_stop(capsys: pytest.CaptureFixture[str]) -> None:
    class Failing(FakeFacade):
        def stop(self) -> None:
            raise OSError("disk gone")

    assert stop_service(Failing(), 1.0) is True
    assert "disk gone" in capsys.readouterr().err


def test_log_lines_go_to_the_log_screen_and_one_summary_line_after_exit(
    service: FakeService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(root, "level", logging.WARNING)
    during: list[str] = []
    books: list[int] = []

    def run(self: OcindexApp, **kwargs: Any) -> None:
        log = logging.getLogger("indexer.legacy.v1")
        for i in range(25):
            log.warning("error: file %d", i)
        log.info("kept for the log screen")
        during.append(capsys.readouterr().err)
        books.append(len(self.logbook.since(0)))

    monkeypatch.setattr(OcindexApp, "run", run)
    assert run_dashboard(args()) == 0
    assert during == [""]  # nothing was written over the dashboard
    assert books == [26]  # the INFO line too: the log screen shows it
    path = tmp_path / "data" / "ocindex" / "dashboard.log"
    err = capsys.readouterr().err.splitlines()
    assert err == [f"ocindex: 25 warnings or errors logged during the session; see {path}"]
    written = path.read_text(encoding="utf-8").splitlines()
    assert len(written) == 25 and written[-1].endswith("WARNING indexer.legacy.v1: error: file 24")
    assert root.handlers == [handler] and root.level == logging.WARNING


def test_a_quiet_session_prints_nothing_after_exit(
    service: FakeService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(self: OcindexApp, **kwargs: Any) -> None:
        logging.getLogger("indexer").info("started")

    monkeypatch.setattr(OcindexApp, "run", run)
    assert run_dashboard(args()) == 0
    assert capsys.readouterr().err == ""


# ---- attach mode: a database another ocindex process serves ----------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """A database path whose live endpoint answers (a fake engine behind a real socket)."""
    db = tmp_path / "held" / "index.duckdb"
    db.parent.mkdir()
    server = LiveServer(FakeHost(Engine()), socket_path(db))
    try:
        yield db
    finally:
        server.stop()


def test_a_database_another_process_serves_opens_the_dashboard_attached_to_it(
    service: FakeService,
    ran: list[OcindexApp],
    served: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)  # as `ocindex` sets it
    assert run_dashboard(args(db=served)) == 0
    assert service.opened == []  # no engine started here
    assert len(ran) == 1 and isinstance(ran[0], AttachedApp)
    remote = ran[0].facade
    assert isinstance(remote, RemoteService) and remote.link().pid == os.getpid()
    messages = [line.message for line in ran[0].logbook.since(0)]
    assert any(m.startswith("attached to ") and str(served) in m for m in messages), messages
    label = remote.link().label
    err = capsys.readouterr().err
    assert f"ocindex: {label} (pid {os.getpid()}) keeps indexing {served}" in err


def test_flags_that_only_an_engine_started_here_would_use_are_reported_as_ignored(
    service: FakeService, ran: list[OcindexApp], served: Path, tmp_path: Path
) -> None:
    assert run_dashboard(args(db=served, indexer="v1", storage=tmp_path)) == 0
    warnings = [line.message for line in ran[0].logbook.since(0) if line.level == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("--storage, --indexer ignored: ")


def test_a_holder_that_starts_serving_after_the_first_look_is_attached(
    service: FakeService,
    ran: list[OcindexApp],
    served: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[Path] = []

    def attach_late(db: Path) -> RemoteService | None:
        looks.append(db)
        return None if len(looks) == 1 else attach(db)

    monkeypatch.setattr(entry, "attach", attach_late)
    service.error = DatabaseError(f"{served} is in use by process 1")
    (served.parent / "storage").mkdir()
    assert run_dashboard(args(db=served, storage=served.parent / "storage")) == 0
    assert looks == [served, served] and len(service.opened) == 1
    assert isinstance(ran[0], AttachedApp)


def test_a_held_database_nobody_serves_is_still_an_error_on_one_line(
    service: FakeService, ran: list[OcindexApp], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service.error = DatabaseError("database is in use by process 1")
    (tmp_path / "storage").mkdir()
    db = tmp_path / "index.duckdb"
    assert run_dashboard(args(db=db, storage=tmp_path / "storage")) == 1
    assert ran == []
    assert capsys.readouterr().err == "ocindex: error: database is in use by process 1\n"
