from __future__ import annotations

import threading
import time

import pytest

from indexer.pipeline.accumulator import (
    AccumulatorConfig,
    Batch,
    FileBatchAccumulator,
    SealReason,
    Trigger,
)
from tests.helpers import key_of, wait_until


def keys(n: int, start: int = 0) -> list:  # type: ignore[type-arg]
    return [key_of(f"part/msg_1/prt_{i:05d}.json") for i in range(start, start + n)]


def collect(acc: FileBatchAccumulator, count: int, timeout_s: float = 5.0) -> list[Batch]:
    out: list[Batch] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        batch = acc.get_batch(timeout_s=0.05)
        if batch is not None:
            out.append(batch)
    return out


@pytest.fixture
def acc():  # type: ignore[no-untyped-def]
    a = FileBatchAccumulator(AccumulatorConfig(window_ms=200, max_files=100))
    yield a
    a.stop(timeout_s=2)


def test_fifty_files_and_the_window_give_one_batch_of_fifty(acc: FileBatchAccumulator) -> None:
    t0 = time.monotonic()
    acc.add_many(keys(50))
    batch = acc.get_batch(timeout_s=2)
    waited = time.monotonic() - t0
    assert batch is not None and len(batch) == 50 and batch.reason is SealReason.WINDOW
    assert 0.15 <= waited < 1.5
    assert acc.get_stats().pending_files == 0
    assert acc.get_batch(timeout_s=0.3) is None


def test_add_many_150_gives_100_now_and_50_after_the_window(acc: FileBatchAccumulator) -> None:
    t0 = time.monotonic()
    acc.add_many(keys(150))
    first = acc.get_batch(timeout_s=2)
    t_first = time.monotonic() - t0
    second = acc.get_batch(timeout_s=2)
    t_second = time.monotonic() - t0
    assert first is not None and second is not None
    assert (len(first), first.reason) == (100, SealReason.MAX_FILES)
    assert (len(second), second.reason) == (50, SealReason.WINDOW)
    assert t_first < 0.15 <= t_second
    assert {e.key.rel_path for e in first.entries}.isdisjoint(
        e.key.rel_path for e in second.entries
    )


def test_no_batch_ever_exceeds_max_files(acc: FileBatchAccumulator) -> None:
    acc.add_many(keys(1234))
    acc.force_flush()
    batches = collect(acc, 13)
    assert [len(b) for b in batches] == [100] * 12 + [34]
    assert len({e.key.rel_path for b in batches for e in b.entries}) == 1234


def test_force_flush_sends_now_and_cancels_the_timer() -> None:
    acc = FileBatchAccumulator(AccumulatorConfig(window_ms=5000, max_files=100))
    try:
        acc.add_many(keys(10))
        t0 = time.monotonic()
        acc.force_flush()
        batch = acc.get_batch(timeout_s=2)
        assert batch is not None and len(batch) == 10 and batch.reason is SealReason.FORCE
        assert time.monotonic() - t0 < 1.0
        assert acc.get_batch(timeout_s=0.3) is None  # nothing left for the old timer to send
    finally:
        acc.stop()


def test_two_threads_adding_the_same_file_give_it_once() -> None:
    acc = FileBatchAccumulator(AccumulatorConfig(window_ms=10_000))
    same = keys(1)[0]
    start = threading.Barrier(2)

    def hammer() -> None:
        start.wait()
        for _ in range(500):
            acc.add(same)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acc.force_flush()
    batch = acc.get_batch(timeout_s=2)
    assert batch is not None and [e.key.rel_path for e in batch.entries] == [same.rel_path]
    assert acc.get_batch(timeout_s=0.2) is None
    assert acc.get_stats().coalesced == 999
    acc.stop()


def test_a_key_added_twice_before_sealing_is_sent_once_with_the_newest_trigger(
    acc: FileBatchAccumulator,
) -> None:
    k = keys(1)[0]
    acc.add(k, Trigger.WATCHER)
    acc.add(k, Trigger.RECONCILER)
    acc.force_flush()
    batch = acc.get_batch(timeout_s=2)
    assert batch is not None and len(batch) == 1
    assert batch.entries[0].trigger is Trigger.RECONCILER


def test_stop_flushes_everything_pending() -> None:
    acc = FileBatchAccumulator(AccumulatorConfig(window_ms=10_000, max_files=100))
    acc.add_many(keys(250))
    acc.add_later(keys(1, 900)[0], delay_s=60)
    got: list[Batch] = []
    consumer = threading.Thread(target=lambda: got.extend(collect(acc, 3)))
    consumer.start()
    acc.stop()
    consumer.join()
    assert sum(len(b) for b in got) == 251
    assert all(b.reason in (SealReason.STOP, SealReason.MAX_FILES) for b in got)
    assert not acc.is_sealing()


def test_batches_arrive_in_order_and_backpressure_drops_nothing() -> None:
    acc = FileBatchAccumulator(
        AccumulatorConfig(window_ms=1, max_files=10, max_queued_batches=1, max_pending_files=50)
    )
    produced = keys(2000)
    producer = threading.Thread(target=lambda: [acc.add(k) for k in produced])
    producer.start()
    seen: list[str] = []
    seqs: list[int] = []
    deadline = time.monotonic() + 20
    while len(seen) < 2000 and time.monotonic() < deadline:
        batch = acc.get_batch(timeout_s=0.05)
        if batch is None:
            continue
        assert acc.get_stats().pending_files <= 50  # memory stays bounded
        seqs.append(batch.seq)
        seen.extend(e.key.rel_path for e in batch.entries)
        time.sleep(0.001)  # a slow writer
    producer.join()
    acc.stop()
    assert sorted(seen) == sorted(k.rel_path for k in produced)
    assert seqs == sorted(seqs)


def test_add_later_waits_for_its_delay(acc: FileBatchAccumulator) -> None:
    t0 = time.monotonic()
    acc.add_later(keys(1)[0], delay_s=0.3)
    assert acc.get_stats().delayed_files == 1
    batch = acc.get_batch(timeout_s=3)
    assert batch is not None and batch.entries[0].trigger is Trigger.RETRY
    assert time.monotonic() - t0 >= 0.3


def test_stats_and_pending_files_newest_first(acc: FileBatchAccumulator) -> None:
    slow = FileBatchAccumulator(AccumulatorConfig(window_ms=10_000))
    try:
        slow.add(keys(1)[0])
        time.sleep(0.01)  # distinct first_seen times, not synchronisation
        slow.add(keys(1, 1)[0])
        listed = slow.pending_files(10)
        assert [p.rel_path for p in listed] == [keys(1, 1)[0].rel_path, keys(1)[0].rel_path]
        stats = slow.get_stats()
        assert stats.pending_files == 2 and stats.oldest_pending_age_s is not None
        assert stats.queue_depth == 0 and stats.batches_sent == 0
    finally:
        slow.stop()
    assert acc.get_stats().batches_sent == 0


def test_adaptive_mode_only_when_configured() -> None:
    acc = FileBatchAccumulator(
        AccumulatorConfig(
            window_ms=1, max_files=10, max_queued_batches=2, max_files_under_backlog=50
        )
    )
    try:
        acc.add_many(keys(300))
        assert wait_until(lambda: acc.get_stats().queue_depth == 2)  # a backlog exists
        sizes = [len(b) for b in collect(acc, 100, timeout_s=2)]
        assert sum(sizes) == 300 and max(sizes) > 10 and max(sizes) <= 50
    finally:
        acc.stop()
