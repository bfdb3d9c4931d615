"""Per-version figures over a time window (files/s, latency percentiles, errors, reconciler
catches) read from batch_log and reconcile_log, the anomaly check, and the Prometheus exporter.
Never blocks the writer: it reads through its own cursor, and the exporter only counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import duckdb

from indexer.config import Alerts, process_env
from indexer.health import Health
from indexer.outcome import BatchResult
from indexer.snapshot import Alert, Comparison, Percentiles, VersionMetrics

LATENCY_SAMPLES = 200


def version_metrics(
    cursor: duckdb.DuckDBPyConnection, version: str, window_s: float, now: float | None = None
) -> VersionMetrics:
    """Return one version's figures over the window ending now (epoch seconds)."""
    now = time.time() if now is None else now
    since = now - window_s
    row = cursor.execute(
        """SELECT count(*), coalesce(sum(files), 0), coalesce(sum(errors), 0),
                  epoch(min(started_at)), epoch(max(committed_at)),
                  quantile_cont(processing_ms, 0.5), quantile_cont(processing_ms, 0.95),
                  quantile_cont(processing_ms, 0.99)
           FROM batch_log WHERE indexer_version = ? AND committed_at >= to_timestamp(?)
             AND committed_at <= to_timestamp(?)""",
        [version, since, now],
    ).fetchone()
    assert row is not None
    batches, files, errors, first, last, p50, p95, p99 = row
    if not batches:
        return VersionMetrics(version=version, window_s=window_s)
    lat = cursor.execute(
        """SELECT quantile_cont(l, 0.5), quantile_cont(l, 0.95), quantile_cont(l, 0.99)
           FROM (SELECT unnest(event_latency_ms) AS l FROM batch_log
                 WHERE indexer_version = ? AND committed_at >= to_timestamp(?)
                   AND committed_at <= to_timestamp(?))""",
        [version, since, now],
    ).fetchone()
    assert lat is not None
    catches_row = cursor.execute(
        """SELECT coalesce(sum(catches), 0) FROM reconcile_log
           WHERE indexer_version = ? AND started_at >= to_timestamp(?)
             AND started_at <= to_timestamp(?)""",
        [version, since, now],
    ).fetchone()
    samples = cursor.execute(
        """SELECT processing_ms FROM batch_log WHERE indexer_version = ?
             AND committed_at >= to_timestamp(?) AND committed_at <= to_timestamp(?)
           ORDER BY batch_id DESC LIMIT ?""",
        [version, since, now, LATENCY_SAMPLES],
    ).fetchall()
    span_s = max(float(last) - float(first), 1.0) if first is not None and last is not None else 1.0
    return VersionMetrics(
        version=version,
        window_s=window_s,
        batches=int(batches),
        files=int(files),
        files_per_s=int(files) / span_s,
        processing_ms=Percentiles(_f(p50), _f(p95), _f(p99)),
        event_latency_ms=Percentiles(_f(lat[0]), _f(lat[1]), _f(lat[2])),
        errors=int(errors),
        reconciler_catches=int(catches_row[0]) if catches_row else 0,
        latency_samples_ms=tuple(float(s[0]) for s in samples),
    )


def compare(
    cursor: duckdb.DuckDBPyConnection, window_s: float, now: float | None = None
) -> Comparison:
    """Return v1 and v2 side by side over the same window."""
    return Comparison(
        window_s=window_s,
        v1=version_metrics(cursor, "v1", window_s, now),
        v2=version_metrics(cursor, "v2", window_s, now),
    )


def _f(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class AlertThresholds:
    error_rate: float = 0.2
    """Share of files in error over the window."""
    p95_ms: float = 500.0
    """p95 batch processing latency."""
    min_files: int = 20
    """Below this many files in the window, no rate is trusted."""
    window_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertThresholds:
        alerts = Alerts.from_env(process_env() if env is None else env)
        return cls(error_rate=alerts.error_rate, p95_ms=alerts.p95_ms, min_files=alerts.min_files)


def check_alert(metrics: VersionMetrics, thresholds: AlertThresholds) -> Alert | None:
    """Return an alert when the version's error rate or p95 latency crossed its threshold."""
    if metrics.files >= thresholds.min_files:
        rate = metrics.errors / metrics.files
        if rate > thresholds.error_rate:
            return Alert(
                "error rate",
                rate,
                thresholds.error_rate,
                f"{metrics.version} error rate {rate:.0%} over the last "
                f"{thresholds.window_s:.0f}s exceeds {thresholds.error_rate:.0%}",
            )
    p95 = metrics.processing_ms.p95
    if metrics.batches >= 5 and p95 is not None and p95 > thresholds.p95_ms:
        return Alert(
            "p95 latency",
            p95,
            thresholds.p95_ms,
            f"{metrics.version} p95 batch latency {p95:.0f} ms exceeds {thresholds.p95_ms:.0f} ms",
        )
    return None


class PrometheusExporter:
    """Serves the Prometheus text format on a loopback port; counts batches as they commit."""

    def __init__(self, port: int, addr: str = "127.0.0.1") -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            start_http_server,
        )

        self.registry = CollectorRegistry()
        self.files = Counter(
            "ocindex_files_indexed", "Files indexed", ["indexer_version"], registry=self.registry
        )
        self.errors = Counter(
            "ocindex_file_errors", "Files in error", ["indexer_version"], registry=self.registry
        )
        self.pending = Gauge(
            "ocindex_pending_files", "Files waiting", ["indexer_version"], registry=self.registry
        )
        self.latency = Histogram(
            "ocindex_batch_latency_seconds",
            "Batch processing latency",
            ["indexer_version"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.unwatched = Gauge(
            "ocindex_unwatched_folders",
            "Folders the watcher could not watch (the inotify limit); the reconciler polls them",
            registry=self.registry,
        )
        self.writer_ok = Gauge(
            "ocindex_writer_ok",
            "1 while the index writer can write; 0 while it reopens the database or has stopped",
            registry=self.registry,
        )
        self.writer_ok.set(1)
        self.server, self.thread = start_http_server(port, addr=addr, registry=self.registry)

    def observe(self, result: BatchResult) -> None:
        v = result.indexer_version
        self.files.labels(indexer_version=v).inc(result.indexed)
        self.errors.labels(indexer_version=v).inc(result.errors)
        self.latency.labels(indexer_version=v).observe(result.processing_ms / 1000)

    def set_pending(self, version: str, count: int) -> None:
        self.pending.labels(indexer_version=version).set(count)

    def track_health(self, health: Callable[[], Health]) -> None:
        """Read the engine's health at each scrape rather than at each batch: a writer that
        cannot write commits no batch to report it."""
        self.unwatched.set_function(lambda: float(health().unwatched_folders))
        self.writer_ok.set_function(lambda: float(health().writer_ok))

    def close(self) -> None:
        self.server.shutdown()
