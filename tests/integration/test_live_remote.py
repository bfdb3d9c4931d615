"""RemoteService against a real live endpoint (Flight on the owner-only socket, in this process)
over a fake engine: every facade call crosses as JSON and comes back equal, errors as one line,
the last figures kept when the process goes away and an attachment again when one comes back;
the loopback TCP opt-in and its refusals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest

from indexer.health import Health
from indexer.live.address import ENGINE_ACTIONS, AddressError, loopback, socket_path
from indexer.live.client import LiveClient, reach
from indexer.live.reading import query_engine
from indexer.live.readonly import QueryError, Refused
from indexer.live.remote import Detached, RemoteService, attach
from indexer.live.server import LiveServer, process_label, serve_tcp
from indexer.snapshot import ActionResult
from tests.faults.support import run_cli
from tests.helpers import wait_until
from tests.support.live_host import Engine, FakeHost
from tests.tui.fakes import comparison


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.duckdb"


@pytest.fixture
def engine() -> Engine:
    return Engine()


@pytest.fixture
def server(engine: Engine, db: Path) -> Iterator[LiveServer]:
    live = LiveServer(FakeHost(engine), socket_path(db))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def remote(server: LiveServer, db: Path) -> Iterator[RemoteService]:
    found = attach(db)
    assert found is not None
    try:
        yield found
    finally:
        found.stop()


def test_the_remote_reads_what_the_engine_answers(remote: RemoteService, engine: Engine) -> None:
    assert remote.snapshot() == engine.snapshot()
    assert remote.compare(120.0) == comparison()
    assert ("compare", (120.0,)) in engine.calls
    assert remote.health() == Health(unwatched_folders=2)
    assert remote.rollout_threshold() == 41
    engine.threshold = None
    assert remote.rollout_threshold() is None
    link = remote.link()
    assert link.connected and link.pid == os.getpid() and link.label == process_label()
    assert remote.read("select 42 as n").to_pylist() == [{"n": 42}]


def test_every_action_reaches_the_engine_and_its_result_comes_back(
    remote: RemoteService, engine: Engine
) -> None:
    assert remote.flush() == ActionResult("flush", True, "flushed 6 files")
    assert remote.rescan().ok
    assert remote.retry("todo/ses_x.json") == ActionResult(
        "retry", True, "retrying todo/ses_x.json"
    )
    assert remote.switch_to("v1", reason="dashboard: v key").message == "v1 is now active"
    assert remote.set_rollout(60).message == "rollout 60%"
    assert remote.rollback(reason="test") == ActionResult(
        "rollback", True, "rolled back to v1 at 0%"
    )
    assert engine.actions() == [
        ("flush", ()),
        ("rescan", ()),
        ("retry", ("todo/ses_x.json",)),
        ("switch_to", ("v1", "dashboard: v key")),
        ("set_rollout", (60,)),
        ("rollback", ("test",)),
    ]
    snap = remote.snapshot()
    assert (snap.active, snap.rollout_percent) == ("v1", 0)


def test_an_engine_failure_reaches_the_remote_as_one_line(
    remote: RemoteService, engine: Engine
) -> None:
    engine.fail = {"flush", "snapshot"}
    with pytest.raises(QueryError, match=r"^flush exploded$"):
        remote.flush()
    with pytest.raises(QueryError, match=r"^snapshot exploded$"):
        remote.snapshot()
    assert remote.link().connected  # an engine error is no lost process


def test_an_unknown_action_and_a_mistyped_request_are_refused(
    server: LiveServer, db: Path, engine: Engine
) -> None:
    client = LiveClient(socket_path(db))
    try:
        with pytest.raises(QueryError, match="unknown action 'shutdown'"):
            client.action("shutdown", {}, 5)
        with pytest.raises(QueryError, match="rel_path must be a string"):
            client.action("retry", {"rel_path": 3}, 5)
        with pytest.raises(QueryError, match="percent"):
            client.action("rollout", {}, 5)
    finally:
        client.close()
    assert engine.actions() == []


def test_a_remote_keeps_the_last_figures_when_the_process_goes_and_attaches_again(
    engine: Engine, db: Path
) -> None:
    first = LiveServer(FakeHost(engine), socket_path(db))
    client = reach(db)
    assert client is not None
    remote = RemoteService(client, db, retry_s=0.0)
    try:
        shown = remote.snapshot()
        first.stop()
        kept = remote.snapshot()
        assert kept.running is False
        assert (kept.totals, kept.recent_batches) == (shown.totals, shown.recent_batches)
        link = remote.link()
        assert (
            not link.connected and link.header == f"detached: {link.label} (pid {link.pid}) is gone"
        )
        with pytest.raises(Detached, match="is gone"):
            remote.flush()
        engine.active = "v1"
        second = LiveServer(FakeHost(engine), socket_path(db))
        try:
            assert wait_until(lambda: remote.snapshot().running, 10.0)
            assert remote.link().connected and remote.snapshot().active == "v1"
            assert remote.flush().ok
        finally:
            second.stop()
    finally:
        remote.stop()
    with pytest.raises(Detached):
        remote.flush()  # stopped: never attaches again


def test_a_detached_remote_without_figures_says_so() -> None:
    remote = RemoteService(LiveClient("grpc+unix:///nonexistent/ocindex.sock"), Path("/x.db"))
    with pytest.raises(Detached, match="is gone"):
        remote.snapshot()


def test_the_endpoint_also_listens_on_loopback_tcp_when_asked(
    server: LiveServer, db: Path, engine: Engine
) -> None:
    tcp = serve_tcp(FakeHost(engine), db, "127.0.0.1:0")
    try:
        assert tcp.location.startswith("grpc+tcp://127.0.0.1:") and tcp.port > 0
        client = LiveClient(tcp.location)
        try:
            assert client.ping() and client.pid == os.getpid()
            assert client.query("select 7 as n").table.to_pylist() == [{"n": 7}]
        finally:
            client.close()
    finally:
        tcp.stop()
    assert socket_path(db).exists()  # the socket's server is untouched


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0:8815", "192.168.1.20:8815", "[::]:8815", "example.com:80", "8815", "127.0.0.1:x"],
)
def test_a_listen_address_that_is_not_loopback_is_refused(address: str) -> None:
    with pytest.raises(AddressError, match="--listen"):
        loopback(address)


def test_loopback_addresses_are_accepted() -> None:
    assert loopback("127.0.0.1:8815") == ("127.0.0.1", 8815)
    assert loopback("localhost:0") == ("127.0.0.1", 0)
    assert loopback("[::1]:9") == ("::1", 9)


def test_run_refuses_a_public_listen_address_with_exit_code_2(tmp_path: Path) -> None:
    done = run_cli(
        "run", "--storage", tmp_path, "--db", tmp_path / "i.duckdb", "--listen", "0.0.0.0:8815"
    )
    assert done.returncode == 2, done.stderr
    assert "0.0.0.0 is not a loopback address" in done.stderr
    assert not (tmp_path / "i.duckdb").exists()


def test_the_process_says_what_it_is() -> None:
    assert process_label(["ocindex", "-v", "run", "--db", "x"]) == "ocindex run"
    assert process_label(["ocindex"]) == "the ocindex dashboard"
    assert process_label(["ocindex", "tui", "--db", "x"]) == "the ocindex dashboard"


class OlderServer(LiveServer):
    """An ocindex from before attach mode: it answers ping, status and rollback only."""

    def _reply(self, name: str, request: dict[str, Any]) -> dict[str, object]:
        if name in ENGINE_ACTIONS:
            raise flight.FlightServerError(f"unknown action {name!r}", extra_info=b"failed")
        return super()._reply(name, request)


def test_an_ocindex_without_attach_mode_is_named_as_such(engine: Engine, db: Path) -> None:
    older = OlderServer(FakeHost(engine), socket_path(db))
    try:
        remote = attach(db)
        assert remote is not None
        try:
            with pytest.raises(QueryError, match=r"is an ocindex without attach mode: update it"):
                remote.snapshot()
            assert remote.link().connected
        finally:
            remote.stop()
    finally:
        older.stop()


def test_a_dashboard_reads_the_index_the_same_way_attached_or_in_process(
    remote: RemoteService, engine: Engine
) -> None:
    in_process = FakeHost(engine)  # has cursor(), as IndexerService
    for source in (remote, in_process):
        assert query_engine(source, "select 42 as n").table.to_pylist() == [{"n": 42}]
        assert query_engine(source, "select * from range(10)", limit=3).truncated
        with pytest.raises(Refused):
            query_engine(source, "create table t (a int)")
