"""indexer.live.wire: every frozen value that crosses the live endpoint comes back equal from its
JSON, and JSON that does not fit the type is refused naming the field."""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import pytest

from indexer.health import Health
from indexer.live import wire
from indexer.live.remote import Link
from indexer.live.wire import WireError
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
from tests.tui.fakes import ALERT, BATCHES, ERRORS, PENDING, RECONCILES, base_snapshot, comparison

VALUES: list[object] = [
    base_snapshot(),
    dataclasses.replace(base_snapshot(), alert=ALERT, message="index writer paused", demo=True),
    dataclasses.replace(
        base_snapshot(),
        oldest_pending_age_s=None,
        pending=(),
        recent_batches=(),
        reconciles=(),
        errors=(),
        totals={},
    ),
    comparison(),
    Comparison(300.0, VersionMetrics("v1", 300.0), VersionMetrics("v2", 300.0, note="n")),
    ActionResult("flush", True, "flushed 6 pending files"),
    ActionResult("switch", False, "unknown indexer 'v3'"),
    Health(),
    Health("disk full", True, 3, 1),
    PENDING[0],
    BATCHES[0],
    dataclasses.replace(BATCHES[1], event_p95_ms=None),
    RECONCILES[0],
    ERRORS[0],
    ALERT,
    Percentiles(1.0, None, 3.5),
    comparison().v2,
    Link("ocindex run", 4242, "/tmp/index.duckdb", False),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_every_value_that_crosses_comes_back_equal_and_of_its_type(value: object) -> None:
    text = wire.dumps(value)
    json.loads(text)  # plain JSON, nothing pickled
    back = wire.loads(type(value), text)
    assert back == value
    assert type(back) is type(value)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_the_json_is_what_dataclasses_asdict_gives(value: object) -> None:
    assert json.loads(wire.dumps(value)) == json.loads(json.dumps(dataclasses.asdict(value)))


def dataclasses_under(kind: object, seen: set[type]) -> set[type]:
    """Every dataclass reachable from `kind` through its fields' types."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if kind in seen:
            return seen
        seen.add(kind)
        for hint in typing.get_type_hints(kind).values():
            dataclasses_under(hint, seen)
    for arg in typing.get_args(kind):
        dataclasses_under(arg, seen)
    return seen


def test_every_dataclass_that_crosses_is_covered() -> None:
    roots = (IndexerSnapshot, Comparison, ActionResult, Health)  # what the actions return
    crossing = set().union(*(dataclasses_under(root, set()) for root in roots))
    assert {PendingFile, BatchSummary, ReconcileSummary, ErrorFile, Alert, Percentiles} <= crossing
    assert crossing <= {type(v) for v in VALUES}


def test_tuples_come_back_as_tuples_and_ints_in_float_fields_as_floats() -> None:
    back = wire.rebuild(
        BatchSummary,
        {**dataclasses.asdict(BATCHES[0]), "processing_ms": 12, "queue_wait_ms": 3},
    )
    assert isinstance(back.processing_ms, float) and back.processing_ms == 12.0
    snap = wire.loads(IndexerSnapshot, wire.dumps(base_snapshot()))
    assert isinstance(snap.pending, tuple) and isinstance(snap.throughput, tuple)
    assert isinstance(snap.reconciles[0].found, tuple)


def test_infinite_and_nan_floats_survive() -> None:
    value = Percentiles(math.inf, None, -math.inf)
    assert wire.loads(Percentiles, wire.dumps(value)) == value
    nan = wire.loads(Percentiles, wire.dumps(Percentiles(math.nan)))
    assert nan.p50 is not None and math.isnan(nan.p50)


def test_a_field_of_the_wrong_type_is_refused_naming_it() -> None:
    data = dataclasses.asdict(base_snapshot())
    data["pending"][1]["age_s"] = "soon"
    with pytest.raises(WireError, match=r"IndexerSnapshot\.pending\[1\]\.age_s"):
        wire.rebuild(IndexerSnapshot, data)


def test_a_bool_is_no_int_and_an_int_is_no_bool() -> None:
    with pytest.raises(WireError, match=r"ActionResult\.ok"):
        wire.rebuild(ActionResult, {"action": "flush", "ok": 1, "message": ""})
    with pytest.raises(WireError, match=r"Health\.unwatched_folders"):
        wire.rebuild(Health, {"unwatched_folders": True})


def test_a_missing_field_without_default_is_refused_and_one_with_a_default_is_filled() -> None:
    with pytest.raises(WireError, match=r"ActionResult\.message: missing"):
        wire.rebuild(ActionResult, {"action": "flush", "ok": True})
    assert wire.rebuild(Health, {}) == Health()


def test_fields_a_newer_process_adds_are_left_out() -> None:
    data = {"action": "flush", "ok": True, "message": "m", "took_ms": 3}
    assert wire.rebuild(ActionResult, data) == ActionResult("flush", True, "m")


def test_an_optional_value_that_fits_neither_is_refused() -> None:
    data = dataclasses.asdict(base_snapshot())
    data["alert"] = "loud"
    with pytest.raises(WireError, match=r"IndexerSnapshot\.alert"):
        wire.rebuild(IndexerSnapshot, data)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(WireError, match="not JSON"):
        wire.loads(Health, b"\x80pickle")
