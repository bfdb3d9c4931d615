"""RemoteService: the dashboard's facade of an engine that runs in another ocindex process (the
daemon holding the database), every call a Flight action on its live endpoint. Never opens the
database: what the dashboard reads comes from the serving process, figures as frozen values.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from indexer.health import Health
from indexer.live import wire
from indexer.live.address import (
    ACTION_COMPARE,
    ACTION_FLUSH,
    ACTION_HEALTH,
    ACTION_RESCAN,
    ACTION_RETRY,
    ACTION_ROLLOUT,
    ACTION_SNAPSHOT,
    ACTION_SWITCH,
    ACTION_THRESHOLD,
)
from indexer.live.client import ACTION_TIMEOUT_S, LiveClient, Unreachable, reach
from indexer.live.readonly import DEFAULT_LIMIT, DEFAULT_TIMEOUT_S, QueryError, QueryResult
from indexer.snapshot import ActionResult, Comparison, IndexerSnapshot

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_TIMEOUT_S = 15.0
"""A snapshot, a comparison or the health takes this at most (the daemon reads its own index)."""
RESCAN_TIMEOUT_S = 600.0
"""A full reconcile scan of a large tree."""
REATTACH_EVERY_S = 1.0
"""How often a detached dashboard looks for the process again (a socket that is gone costs a
stat, a dead one a refused connect)."""


class Detached(QueryError):
    """The attached process stopped answering; the message is one line for the header."""

    kind = "detached"


@dataclass(frozen=True, slots=True)
class Link:
    """The attachment, as the header shows it."""

    label: str
    """What the serving process is: "ocindex run", "the ocindex dashboard"."""
    pid: int
    db: str
    connected: bool

    @property
    def header(self) -> str:
        if self.connected:
            return f"attached to {self.label} (pid {self.pid})"
        return f"detached: {self.label} (pid {self.pid}) is gone"

    @property
    def explained(self) -> str:
        """The sentence of a toast or a dimmed key's reason."""
        if self.connected:
            return f"attached to {self.label} (pid {self.pid}), which indexes {self.db}"
        return (
            f"{self.label} (pid {self.pid}) stopped answering; the figures shown are its last, "
            "and this dashboard attaches again as soon as an ocindex serves the database"
        )


class RemoteService:
    """indexer.snapshot.IndexerFacade over the live endpoint of the process that holds `db`.
    Safe from any thread (the dashboard polls and acts from workers). When the process goes
    away, snapshot() returns the last figures marked not running and actions raise Detached;
    every REATTACH_EVERY_S a call looks for a process serving `db` again and attaches to it."""

    def __init__(
        self,
        client: LiveClient,
        db: Path,
        *,
        find: Callable[[Path], LiveClient | None] = reach,
        retry_s: float = REATTACH_EVERY_S,
    ) -> None:
        self.db = db
        self._find = find
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._client: LiveClient | None = client
        self._link = Link(client.label, client.pid, str(db), True)
        self._last: IndexerSnapshot | None = None
        self._last_try = 0.0
        self._stopped = False

    # --- the attachment -----------------------------------------------------------------------

    def link(self) -> Link:
        with self._lock:
            return self._link

    def _connected(self) -> LiveClient:
        """The client to call; reattaches at most every retry_s once the process went away."""
        with self._lock:
            if self._client is not None:
                return self._client
            if self._stopped:
                raise Detached("the dashboard closed its attachment")
            now = time.monotonic()
            if now - self._last_try < self._retry_s:
                raise Detached(self._link.header)
            self._last_try = now
            client = self._find(self.db)
            if client is None:
                raise Detached(self._link.header)
            self._client = client
            self._link = Link(client.label, client.pid, str(self.db), True)
        log.info("attached again to %s (pid %d) on %s", client.label, client.pid, self.db)
        return client

    def _lose(self, client: LiveClient) -> None:
        with self._lock:
            if self._client is not client:
                return  # another thread noticed first
            self._client = None
            self._last_try = time.monotonic()
            self._link = dataclasses.replace(self._link, connected=False)
        client.close()
        log.warning("%s (pid %d) stopped answering", self._link.label, self._link.pid)

    def _call(self, action: str, body: dict[str, object], timeout_s: float) -> dict[str, Any]:
        client = self._connected()
        try:
            return client.action(action, body, timeout_s)
        except Unreachable:
            self._lose(client)
            raise Detached(self.link().header) from None
        except QueryError as exc:
            if str(exc).startswith("unknown action"):
                raise QueryError(
                    f"{client.label} (pid {client.pid}) is an ocindex without attach mode: "
                    "update it, or stop it and run the dashboard alone"
                ) from None
            raise

    def _value(self, kind: type[T], action: str, body: dict[str, object], timeout_s: float) -> T:
        return wire.rebuild(kind, self._call(action, body, timeout_s).get("value"))

    def _act(self, action: str, body: dict[str, object], timeout_s: float) -> ActionResult:
        return self._value(ActionResult, action, body, timeout_s)

    # --- the facade ---------------------------------------------------------------------------

    def snapshot(self) -> IndexerSnapshot:
        """The serving engine's snapshot; while detached, its last one with running False."""
        try:
            snapshot = self._value(IndexerSnapshot, ACTION_SNAPSHOT, {}, READ_TIMEOUT_S)
        except Detached:
            with self._lock:
                last = self._last
            if last is None:
                raise
            return dataclasses.replace(last, running=False)
        with self._lock:
            self._last = snapshot
        return snapshot

    def compare(self, window_s: float = 300.0) -> Comparison:
        return self._value(Comparison, ACTION_COMPARE, {"window_s": window_s}, READ_TIMEOUT_S)

    def health(self) -> Health:
        return self._value(Health, ACTION_HEALTH, {}, READ_TIMEOUT_S)

    def rollout_threshold(self) -> int | None:
        value = self._call(ACTION_THRESHOLD, {}, READ_TIMEOUT_S).get("value")
        return None if value is None else int(value)

    def flush(self) -> ActionResult:
        return self._act(ACTION_FLUSH, {}, ACTION_TIMEOUT_S)

    def rescan(self) -> ActionResult:
        return self._act(ACTION_RESCAN, {}, RESCAN_TIMEOUT_S)

    def retry(self, rel_path: str) -> ActionResult:
        return self._act(ACTION_RETRY, {"rel_path": rel_path}, ACTION_TIMEOUT_S)

    def switch_to(self, version: str, reason: str = "") -> ActionResult:
        body: dict[str, object] = {"version": version, "reason": reason}
        return self._act(ACTION_SWITCH, body, ACTION_TIMEOUT_S)

    def set_rollout(self, percent: int) -> ActionResult:
        return self._act(ACTION_ROLLOUT, {"percent": int(percent)}, ACTION_TIMEOUT_S)

    def rollback(self, reason: str = "rollback") -> ActionResult:
        client = self._connected()
        try:
            reply = client.rollback(reason)
        except Unreachable:
            self._lose(client)
            raise Detached(self.link().header) from None
        return ActionResult(
            str(reply.get("action", "rollback")), bool(reply["ok"]), reply["message"]
        )

    # --- reads of the index -------------------------------------------------------------------

    def query(
        self, sql: str, limit: int = DEFAULT_LIMIT, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> QueryResult:
        """A read-only query on the serving process's index (what an in-process dashboard reads
        with indexer.live.readonly.run_read on service.cursor())."""
        client = self._connected()
        try:
            return client.query(sql, limit, timeout_s)
        except Unreachable:
            self._lose(client)
            raise Detached(self.link().header) from None

    def read(self, sql: str) -> pa.Table:
        """The whole result of a read-only query; QueryError when it passes DEFAULT_LIMIT rows."""
        result = self.query(sql)
        if result.truncated:
            raise QueryError(f"a read of the index passed {DEFAULT_LIMIT} rows")
        return result.table

    def stop(self) -> None:
        """Detach: the serving process keeps indexing."""
        with self._lock:
            client, self._client = self._client, None
            self._stopped = True
        if client is not None:
            client.close()


def attach(db: Path) -> RemoteService | None:
    """A RemoteService on the process that serves `db` now, or None when none answers."""
    client = reach(db)
    if client is None:
        return None
    log.info("attached to %s (pid %d) on %s", client.label, client.pid, db)
    return RemoteService(client, db)
