from __future__ import annotations

import duckdb
import pytest

from indexer.metrics import AlertThresholds, check_alert, compare, version_metrics
from indexer.snapshot import Percentiles, VersionMetrics

NOW = 1_800_000_000.0


def add_batch(
    conn: duckdb.DuckDBPyConnection,
    batch_id: int,
    version: str,
    at: float,
    files: int,
    errors: int,
    processing_ms: float,
    latencies: list[float],
) -> None:
    conn.execute(
        "INSERT INTO batch_log VALUES (?, ?, 'window', to_timestamp(?), to_timestamp(?), ?, ?, ?, 0, 0, 0, 0, ?, ?)",
        [
            batch_id,
            version,
            at - processing_ms / 1000,
            at,
            files,
            files - errors,
            errors,
            processing_ms,
            latencies,
        ],
    )


def test_known_batches_give_expected_percentiles_and_rates(
    index_db: duckdb.DuckDBPyConnection,
) -> None:
    # v2: 101 batches of 100 files over 100 s, processing 1..101 ms, latencies 10..1010 ms.
    for i in range(101):
        add_batch(
            index_db,
            i + 1,
            "v2",
            NOW - 100 + i,
            100,
            1 if i < 10 else 0,
            float(i + 1),
            [10.0 * (i + 1)],
        )
    # v1: one file a second for 50 s, 40 ms each, plus one old batch outside the window.
    for i in range(51):
        add_batch(index_db, 1000 + i, "v1", NOW - 50 + i, 1, 0, 40.0, [500.0])
    add_batch(index_db, 5000, "v1", NOW - 10_000, 1, 1, 9999.0, [1.0])
    index_db.execute(
        "INSERT INTO reconcile_log VALUES (1, 'v2', to_timestamp(?), 5, 100, 3, 1, 0, 0, 4)",
        [NOW - 30],
    )
    v2 = version_metrics(index_db, "v2", 300, NOW)
    assert (v2.batches, v2.files, v2.errors, v2.reconciler_catches) == (101, 10_100, 10, 4)
    assert v2.files_per_s == pytest.approx(10_100 / (100 + 0.001), rel=0.01)
    assert v2.processing_ms.p50 == pytest.approx(51.0)
    assert v2.processing_ms.p95 == pytest.approx(96.0)
    assert v2.processing_ms.p99 == pytest.approx(100.0)
    assert v2.event_latency_ms.p50 == pytest.approx(510.0)
    assert v2.event_latency_ms.p95 == pytest.approx(960.0)
    assert len(v2.latency_samples_ms) == 101
    v1 = version_metrics(index_db, "v1", 300, NOW)
    assert (v1.batches, v1.files, v1.errors) == (51, 51, 0)  # the old batch is outside the window
    assert v1.files_per_s == pytest.approx(51 / 50.04, rel=0.01)
    both = compare(index_db, 300, NOW)
    assert both.ratio == pytest.approx(v2.files_per_s / v1.files_per_s)


def test_empty_window_gives_zeroes(index_db: duckdb.DuckDBPyConnection) -> None:
    m = version_metrics(index_db, "v1", 60, NOW)
    assert (m.batches, m.files, m.files_per_s, m.processing_ms.p95) == (0, 0, 0.0, None)
    assert compare(index_db, 60, NOW).ratio is None


def test_an_alert_fires_on_the_error_rate_or_p95_latency_but_not_on_few_files() -> None:
    t = AlertThresholds(error_rate=0.2, p95_ms=500, min_files=20)
    calm = VersionMetrics(
        "v2", 60, batches=10, files=100, errors=5, processing_ms=Percentiles(10, 20, 30)
    )
    assert check_alert(calm, t) is None
    errors = VersionMetrics("v2", 60, batches=10, files=100, errors=30)
    alert = check_alert(errors, t)
    assert alert is not None and alert.figure == "error rate" and alert.value == pytest.approx(0.3)
    slow = VersionMetrics(
        "v2", 60, batches=10, files=100, processing_ms=Percentiles(100, 900, 1000)
    )
    alert = check_alert(slow, t)
    assert alert is not None and alert.figure == "p95 latency" and "900 ms" in alert.message
    few = VersionMetrics("v2", 60, batches=1, files=3, errors=3)
    assert check_alert(few, t) is None


def test_thresholds_come_from_the_environment() -> None:
    t = AlertThresholds.from_env({"OCINDEX_ALERT_ERROR_RATE": "0.5", "OCINDEX_ALERT_P95_MS": "250"})
    assert (t.error_rate, t.p95_ms) == (0.5, 250.0)
