"""The engine's health in plain words and as Prometheus gauges: the writer's condition, the
folders the watcher could not watch."""

from __future__ import annotations

from prometheus_client import generate_latest

from indexer.health import Health, health_notice, health_of
from indexer.metrics import PrometheusExporter
from indexer.pipeline.v2 import V2Stats
from indexer.pipeline.watcher import WatcherStats

DISK_FULL = "the database was invalidated (IO Error: No space left on device); reopening it"


def v2_stats(condition: str | None = None, fatal: str | None = None, unwatched: int = 0) -> V2Stats:
    folders = tuple(f"part/msg_{i}" for i in range(unwatched))
    return V2Stats(
        version="v2",
        running=True,
        batches=0,
        files_processed=0,
        db_errors=0,
        fatal=fatal,
        pending_files=0,
        oldest_pending_age_s=None,
        queue_depth=0,
        delayed_files=0,
        watcher=WatcherStats(refused_watches=unwatched + 1, unwatched=folders),
        batches_sent=0,
        files_sent=0,
        condition=condition,
    )


def test_health_notice_is_empty_while_all_is_well() -> None:
    health = health_of(v2_stats())
    assert health.writer_ok
    assert health.refused_watches == 1
    assert health_notice(health) == ""


def test_health_notice_names_a_reopening_writer_and_the_unwatched_folders() -> None:
    health = health_of(v2_stats(condition=DISK_FULL, unwatched=3))
    assert not health.writer_ok
    assert health_notice(health) == (
        f"index writer paused: {DISK_FULL} — retrying; "
        "3 folders not watched (inotify limit): polled every 2 s"
    )


def test_health_notice_says_a_writer_that_gave_up_needs_a_restart() -> None:
    health = health_of(v2_stats(condition="cannot reopen", fatal="cannot reopen"))
    assert health.stopped
    assert health_notice(health) == "index writer stopped: cannot reopen — restart ocindex"


def test_metrics_expose_the_unwatched_folders_and_whether_the_writer_can_write() -> None:
    exporter = PrometheusExporter(0)
    try:
        now = [Health()]
        exporter.track_health(lambda: now[0])
        text = generate_latest(exporter.registry).decode()
        assert "ocindex_writer_ok 1.0" in text
        assert "ocindex_unwatched_folders 0.0" in text
        now[0] = health_of(v2_stats(condition=DISK_FULL, unwatched=2))
        text = generate_latest(exporter.registry).decode()
        assert "ocindex_writer_ok 0.0" in text
        assert "ocindex_unwatched_folders 2.0" in text
    finally:
        exporter.close()
