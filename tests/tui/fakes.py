"""A deterministic fake engine for the dashboard tests, and helpers to drive the app.

FakeFacade implements indexer.snapshot.IndexerFacade with fixed data (fixed taken_at, sorted
lists, fixed latencies), keeps the state the actions change and records every call.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.worker import WorkerState

from indexer.snapshot import (
    ActionResult,
    Alert,
    BatchSummary,
    Comparison,
    ErrorFile,
    IndexerSnapshot,
    PendingFile,
    Percentiles,
    ReconcileSummary,
    VersionMetrics,
)
from tui.app import OcindexApp
from tui.messages import SnapshotReady

READS = ("snapshot", "compare", "rollout_threshold")
"""Facade calls that change nothing: not listed by actions(), never held by the gate."""
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
STORAGE = "/home/dev/.local/share/opencode/storage"

PENDING = (
    PendingFile(
        "part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58bae001RTV15nW5oBAH9l.json",
        "part",
        0.12,
        "event",
    ),
    PendingFile(
        "part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58ae6001ErmGTMBvVSj80J.json",
        "part",
        0.31,
        "event",
    ),
    PendingFile(
        "message/ses_3ee0a8147ffeQ2jB1dS8sWJpA4/msg_c11f57eb6001zjdZqveZle3ppa.json",
        "message",
        0.48,
        "event",
    ),
    PendingFile("session/global/ses_3ee0a8147ffeQ2jB1dS8sWJpA4.json", "session", 0.9, "event"),
    PendingFile("todo/ses_3ee0a8147ffeQ2jB1dS8sWJpA4.json", "todo", 1.7, "retry"),
    PendingFile("session_diff/ses_3ee0a8147ffeQ2jB1dS8sWJpA4.json", "session_diff", 3.4, "retry"),
)
ERRORS = (
    ErrorFile(
        "part/msg_c11f4e21a001Hq7bXyTn0cWv3D/prt_c11f4e3f0001aB3dE5fG7hJ9kL.json",
        "part",
        "invalid_json",
        "Expecting ',' delimiter: line 1 column 4097 (char 4096)\n"
        "The file stayed unparsable for 2.0 s after its last write.",
        3,
        "error",
    ),
    ErrorFile(
        "message/ses_3ee0b11c2ffeZx9LmNpQrStUv1/msg_c11f4a007001WxYz0123456789.json",
        "message",
        "invalid_utf8",
        "'utf-8' codec can't decode byte 0xff in position 17: invalid start byte",
        2,
        "error",
    ),
    ErrorFile(
        "todo/ses_3ee0c5d10ffeAaBbCcDdEeFfGg.json",
        "todo",
        "wrong_top_level",
        "expected a JSON array at the top level, found an object",
        1,
        "error",
    ),
)


def _latency(i: int) -> float:
    """A fixed, lumpy latency series: a hump near 12 ms and a tail up to ~90 ms."""
    base = 8.0 + (i * 7919 % 97) / 10.0
    if i % 17 == 0:
        base += 45.0
    if i % 41 == 0:
        base += 30.0
    return round(base, 1)


BATCHES = tuple(
    BatchSummary(
        batch_id=1000 - i,
        indexer_version="v2",
        trigger="window" if i % 5 else "size",
        committed_at=T0 - 0.25 * i,
        files=60 + i % 40,
        indexed=58 + i % 40,
        errors=1 if i % 23 == 0 else 0,
        pending=1 if i % 11 == 0 else 0,
        deleted=0,
        processing_ms=_latency(i),
        queue_wait_ms=2.0 + i % 5,
        event_p95_ms=40.0 + i % 30,
    )
    for i in range(120)
)
THROUGHPUT = tuple(float(300 + (i * 37) % 200 + (150 if 20 <= i < 30 else 0)) for i in range(60))
RECONCILES = (
    ReconcileSummary(
        scan_id=42,
        started_at=T0 - 12.0,
        duration_ms=612.0,
        files_seen=12_840,
        new_files=2,
        modified_files=1,
        deleted_files=0,
        retried_files=0,
        found=(
            "part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58906001wMoL2HM0Tk4Rl3.json",
            "part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58907001T3Zb6zFLWFRUxj.json",
            "session_diff/ses_3ee0a8147ffeQ2jB1dS8sWJpA4.json",
        ),
    ),
    ReconcileSummary(42 - 1, T0 - 72.0, 588.0, 12_790, 0, 0, 0, 0, ()),
    ReconcileSummary(
        42 - 2,
        T0 - 132.0,
        640.0,
        12_700,
        0,
        0,
        1,
        0,
        ("part/msg_c11f4e21a001Hq7bXyTn0cWv3D/prt_c11f4e3e0001Zz9Yy8Xx7Ww6Vv.json",),
    ),
    ReconcileSummary(42 - 3, T0 - 192.0, 1_903.0, 12_650, 12_650, 0, 0, 0, ()),
)
RESCAN_FOUND = (
    "sqlite:opencode.db:session_message/msg_c11f60001001AbCdEfGhIjKlMnOp",
    "part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58909001QqRrSsTtUuVvWw.json",
    "todo/ses_3ee0c5d10ffeAaBbCcDdEeFfGg.json",
)
ALERT = Alert(
    figure="p95 latency",
    value=412.0,
    threshold=250.0,
    message="v2 batches slowed down over the last 60 s",
)


def base_snapshot() -> IndexerSnapshot:
    return IndexerSnapshot(
        taken_at=T0,
        active="v2",
        rollout_percent=50,
        running=True,
        demo=False,
        storage_root=STORAGE,
        files_per_s=412.5,
        totals={"indexed": 12_834, "error": 3, "pending": 6, "deleted": 17, "skipped": 4},
        pending_count=6,
        oldest_pending_age_s=3.4,
        queue_depth=2,
        pending=PENDING,
        recent_batches=BATCHES,
        throughput=THROUGHPUT,
        reconciles=RECONCILES,
        errors=ERRORS,
    )


def comparison() -> Comparison:
    v1_samples = tuple(
        round(40.0 + (i * 31 % 53) + (60 if i % 9 == 0 else 0), 1) for i in range(80)
    )
    v2_samples = tuple(_latency(i) for i in range(80))
    return Comparison(
        window_s=300.0,
        v1=VersionMetrics(
            version="v1",
            window_s=300.0,
            batches=2_410,
            files=2_410,
            files_per_s=96.4,
            processing_ms=Percentiles(62.0, 131.0, 158.0),
            event_latency_ms=Percentiles(310.0, 780.0, 1_240.0),
            errors=4,
            reconciler_catches=9,
            latency_samples_ms=v1_samples,
            note="v1 does not read session_diff files; its file counts exclude them",
        ),
        v2=VersionMetrics(
            version="v2",
            window_s=300.0,
            batches=410,
            files=123_700,
            files_per_s=412.3,
            processing_ms=Percentiles(13.2, 57.0, 88.0),
            event_latency_ms=Percentiles(48.0, 96.0, 131.0),
            errors=3,
            reconciler_catches=1,
            latency_samples_ms=v2_samples,
        ),
    )


class FakeFacade:
    """The engine, faked: fixed figures, state changed by the actions, every call recorded."""

    def __init__(self, snapshot: IndexerSnapshot | None = None) -> None:
        self.base = snapshot or base_snapshot()
        self.active = self.base.active
        self.rollout = self.base.rollout_percent
        self.alert: Alert | None = self.base.alert
        self.retried: list[str] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: set[str] = set()
        """Names of methods that raise instead of answering."""
        self.gate: threading.Event | None = None
        """When set to an Event, actions block until it is set (to observe the busy state)."""
        self.stopped = False
        self.reconciles = self.base.reconciles
        """The active indexer's scans: r adds one, a switch starts the new indexer's list."""
        self.threshold: int | None = 41
        """This install runs v2 from this rollout up (bucket 40); None: pinned by the env."""
        self._lock = threading.Lock()

    def _record(self, name: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((name, args))
        if name in self.fail:
            raise RuntimeError(f"{name} exploded\nsecond line")
        if self.gate is not None and name not in READS:
            self.gate.wait(5)

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.calls]

    def actions(self) -> list[tuple[str, tuple[Any, ...]]]:
        with self._lock:
            return [c for c in self.calls if c[0] not in READS]

    def snapshot(self) -> IndexerSnapshot:
        self._record("snapshot")
        errors = tuple(e for e in self.base.errors if e.rel_path not in self.retried)
        return dataclasses.replace(
            self.base,
            active=self.active,
            rollout_percent=self.rollout,
            alert=self.alert,
            errors=errors,
            reconciles=self.reconciles,
        )

    def compare(self, window_s: float = 300.0) -> Comparison:
        self._record("compare", window_s)
        return comparison()

    def flush(self) -> ActionResult:
        self._record("flush")
        return ActionResult("flush", True, "flushed 6 files")

    def rescan(self) -> ActionResult:
        self._record("rescan")
        newest = max((scan.scan_id for scan in self.reconciles), default=0)
        scan = ReconcileSummary(newest + 1, T0 - 1.0, 450.0, 12_900, 1, 1, 1, 2, RESCAN_FOUND)
        self.reconciles = (scan, *self.reconciles)
        return ActionResult("rescan", True, "rescan started")

    def switch_to(self, version: str, reason: str = "") -> ActionResult:
        self._record("switch_to", version, reason)
        if version != self.active:
            self.reconciles = ()
        self.active = version
        return ActionResult("switch", True, f"{version} is now active")

    def rollback(self, reason: str = "") -> ActionResult:
        self._record("rollback", reason)
        self.active, self.rollout, self.alert = "v1", 0, None
        return ActionResult("rollback", True, "rolled back to v1 at 0%")

    def set_rollout(self, percent: int) -> ActionResult:
        self._record("set_rollout", percent)
        self.rollout = percent
        if self.threshold is not None:
            self.active = "v2" if percent >= self.threshold else "v1"
        return ActionResult("rollout", True, f"rollout {percent}%")

    def rollout_threshold(self) -> int | None:
        self._record("rollout_threshold")
        return self.threshold

    def retry(self, rel_path: str) -> ActionResult:
        self._record("retry", rel_path)
        self.retried.append(rel_path)
        return ActionResult("retry", True, f"retrying {rel_path}")

    def stop(self) -> None:
        self._record("stop")
        self.stopped = True

    # What the dashboard's entry uses of an engine it starts itself (IndexerService).
    is_running = False

    def start(self) -> None:
        self._record("start")
        self.is_running = True

    def indexer_stats(self) -> None:
        return None


def frozen_clock() -> float:
    return T0 + 0.3


def make_app(facade: FakeFacade | None = None) -> OcindexApp:
    """The app over a fake engine, with no poll timer and a frozen clock."""
    return OcindexApp(facade or FakeFacade(), poll_interval=None, clock=frozen_clock)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until every worker is done and every resulting message is handled."""
    for _ in range(6):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(
            w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in pilot.app.workers
        ):
            return


async def until(
    pilot: Pilot[Any],
    predicate: Callable[[], bool],
    what: str,
    timeout_s: float = 30.0,
    state: Callable[[], object] | None = None,
) -> None:
    """Pump the app until `predicate()` holds; fail naming `what` (and `state()`, what the app
    shows then) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause()
    shows = f"; at the deadline: {state()!r}" if state is not None else ""
    assert predicate(), f"timed out after {timeout_s:.0f}s waiting for: {what}{shows}"


def post_snapshot(
    snapshot: IndexerSnapshot | None = None,
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A run_before that posts one snapshot (the facade's own by default) and waits for it."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, OcindexApp)
        snap = snapshot if snapshot is not None else app.facade.snapshot()
        app.post_message(SnapshotReady(snap))
        await settle(pilot)

    return run_before


async def footer_keys(pilot: Pilot[Any], wanted: set[str], timeout_s: float = 10.0) -> set[str]:
    """The footer's keys once they include `wanted`: the footer recomposes them after a
    refresh, which a loaded machine delays (polled until a deadline)."""
    import time

    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    deadline = time.monotonic() + timeout_s
    while True:
        keys = {key.key for key in pilot.app.screen.query_one(Footer).query(FooterKey)}
        if wanted <= keys or time.monotonic() > deadline:
            return keys
        await pilot.pause(0.05)
