from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from indexer.kinds import FileKey
from indexer.pipeline.accumulator import (
    ADD_SLICE,
    IDLE_WAIT_S,
    AccumulatorConfig,
    Batch,
    FileBatchAccumulator,
    OpenBatch,
    SealDecision,
    SealReason,
    Trigger,
    decide_seal,
)
from tests.helpers import FakeClock, key_of, wait_until


def keys(n: int, start: int = 0) -> list[FileKey]:
    return [key_of(f"part/msg_1/prt_{i:05d}.json") for i in range(start, start + n)]


def started(config: AccumulatorConfig, clock: FakeClock | None = None) -> FileBatchAccumulator:
    acc = (
        FileBatchAccumulator(config)
        if clock is None
        else FileBatchAccumulator(config, monotonic=clock)
    )
    acc.start()
    return acc


def collect(acc: FileBatchAccumulator, count: int, timeout_s: float = 5.0) -> list[Batch]:
    out: list[Batch] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        batch = acc.get_batch(timeout_s=0.05)
        if batch is not None:
            out.append(batch)
    return out


def collect_files(acc: FileBatchAccumulator, files: int, timeout_s: float = 10.0) -> list[Batch]:
    """Take batches until they hold `files` keys in all, or the deadline passes."""
    out: list[Batch] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(b) for b in out) < files and time.monotonic() < deadline:
        batch = acc.get_batch(timeout_s=0.05)
        if batch is not None:
            out.append(batch)
    return out


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def acc(clock: FakeClock) -> Iterator[FileBatchAccumulator]:
    # Quarter seconds add up exactly in binary, so the fake clock lands on each deadline.
    a = started(
        AccumulatorConfig(window_ms=250, max_files=100, max_files_under_backlog=None, idle_ms=None),
        clock,
    )
    yield a
    a.stop(timeout_s=2)


# --- the sealing policy: a pure function of the open batch, the config and the clock -----------

WINDOW = AccumulatorConfig(window_ms=200, max_files=100, max_files_under_backlog=None, idle_ms=None)
NO_FLUSH = AccumulatorConfig(
    window_ms=200, max_files=100, flush_on_stop=False, max_files_under_backlog=None, idle_ms=None
)
ADAPTIVE = AccumulatorConfig(window_ms=200, max_files=10, max_files_under_backlog=50, idle_ms=None)
LONG_WINDOW = AccumulatorConfig(window_ms=5000, max_files=100, idle_ms=None)
NO_WINDOW = AccumulatorConfig(window_ms=0, max_files=100, idle_ms=None)
IDLE = AccumulatorConfig(window_ms=200, max_files=100, idle_ms=20)
IDLE_PAST_THE_WINDOW = AccumulatorConfig(window_ms=200, max_files=100, idle_ms=500)


def open_batch(
    pending_files: int = 0,
    oldest_first_seen: float | None = None,
    next_retry_due: float | None = None,
    forced: bool = False,
    stopping: bool = False,
    in_flight: bool = False,
) -> OpenBatch:
    if pending_files and oldest_first_seen is None:
        oldest_first_seen = 0.0
    return OpenBatch(pending_files, oldest_first_seen, next_retry_due, forced, stopping, in_flight)


def seal(reason: SealReason, files: int) -> SealDecision:
    return SealDecision(reason, files, 0.0, False)


def keep_open(wait_s: float, finished: bool = False) -> SealDecision:
    return SealDecision(None, 0, wait_s, finished)


# id: (the open batch, the config, now, the decision)
POLICY_CASES: dict[str, tuple[OpenBatch, AccumulatorConfig, float, SealDecision]] = {
    "nothing_pending_sleeps_the_idle_wait": (open_batch(), WINDOW, 0.0, keep_open(IDLE_WAIT_S)),
    "fifty_in_the_window_wait_out_the_rest": (open_batch(50), WINDOW, 0.05, keep_open(0.15)),
    "fifty_seal_when_the_window_ends": (open_batch(50), WINDOW, 0.2, seal(SealReason.WINDOW, 50)),
    "the_cap_seals_at_once": (open_batch(150), WINDOW, 0.0, seal(SealReason.MAX_FILES, 100)),
    "one_below_the_cap_waits_for_the_window": (open_batch(99), WINDOW, 0.0, keep_open(0.2)),
    "a_forced_flush_seals_before_the_window": (
        open_batch(10, forced=True),
        LONG_WINDOW,
        0.0,
        seal(SealReason.FORCE, 10),
    ),
    "a_forced_flush_seals_at_most_the_cap": (
        open_batch(250, forced=True),
        WINDOW,
        0.0,
        seal(SealReason.MAX_FILES, 100),
    ),
    "a_flushing_stop_seals_what_is_pending": (
        open_batch(50, stopping=True),
        WINDOW,
        0.0,
        seal(SealReason.STOP, 50),
    ),
    "a_forced_flush_while_stopping_is_reported_as_stop": (
        open_batch(50, forced=True, stopping=True),
        NO_FLUSH,
        0.0,
        seal(SealReason.STOP, 50),
    ),
    "a_stop_without_flush_leaves_a_young_batch_for_the_handover": (
        open_batch(50, stopping=True),
        NO_FLUSH,
        0.0,
        keep_open(0.2, finished=True),
    ),
    "a_stop_without_flush_still_seals_a_batch_whose_window_ended": (
        open_batch(50, stopping=True),
        NO_FLUSH,
        0.2,
        seal(SealReason.WINDOW, 50),
    ),
    "a_stop_with_nothing_pending_finishes": (
        open_batch(stopping=True),
        WINDOW,
        0.0,
        keep_open(IDLE_WAIT_S, finished=True),
    ),
    "a_retry_due_before_the_window_ends_shortens_the_wait": (
        open_batch(5, next_retry_due=0.05),
        WINDOW,
        0.0,
        keep_open(0.05),
    ),
    "a_retry_alone_sets_the_wait": (open_batch(next_retry_due=0.3), WINDOW, 0.0, keep_open(0.3)),
    "a_distant_retry_waits_at_most_the_idle_wait": (
        open_batch(next_retry_due=60.0),
        WINDOW,
        0.0,
        keep_open(IDLE_WAIT_S),
    ),
    "an_overdue_retry_waits_the_shortest_step": (
        open_batch(next_retry_due=-1.0),
        WINDOW,
        0.0,
        keep_open(0.001),
    ),
    "a_busy_pipeline_raises_the_cap_to_everything_pending": (
        open_batch(30, in_flight=True),
        ADAPTIVE,
        0.0,
        seal(SealReason.MAX_FILES, 30),
    ),
    "a_busy_pipeline_raises_the_cap_up_to_its_bound": (
        open_batch(1000, in_flight=True),
        ADAPTIVE,
        0.0,
        seal(SealReason.MAX_FILES, 50),
    ),
    "a_busy_pipeline_with_fewer_than_max_files_pending_keeps_the_batch_open": (
        open_batch(5, in_flight=True),
        ADAPTIVE,
        0.0,
        keep_open(0.2),
    ),
    "adaptive_mode_with_nothing_in_flight_keeps_max_files": (
        open_batch(60),
        ADAPTIVE,
        0.0,
        seal(SealReason.MAX_FILES, 10),
    ),
    "a_busy_pipeline_without_adaptive_mode_keeps_max_files": (
        open_batch(150, in_flight=True),
        WINDOW,
        0.0,
        seal(SealReason.MAX_FILES, 100),
    ),
    "a_zero_window_seals_at_once": (open_batch(1), NO_WINDOW, 0.0, seal(SealReason.WINDOW, 1)),
    "an_idle_pipeline_waits_until_the_oldest_is_idle_ms_old": (
        open_batch(5),
        IDLE,
        0.005,
        keep_open(0.015),
    ),
    "an_idle_pipeline_seals_once_the_oldest_is_idle_ms_old": (
        open_batch(5),
        IDLE,
        0.02,
        seal(SealReason.IDLE, 5),
    ),
    "a_busy_pipeline_waits_for_the_window": (
        open_batch(5, in_flight=True),
        IDLE,
        0.05,
        keep_open(0.15),
    ),
    "a_busy_pipeline_still_seals_at_the_window": (
        open_batch(5, in_flight=True),
        IDLE,
        0.2,
        seal(SealReason.WINDOW, 5),
    ),
    "an_idle_wait_longer_than_the_window_is_the_window": (
        open_batch(5),
        IDLE_PAST_THE_WINDOW,
        0.2,
        seal(SealReason.WINDOW, 5),
    ),
    "an_idle_pipeline_still_seals_at_the_cap_at_once": (
        open_batch(150),
        IDLE,
        0.0,
        seal(SealReason.MAX_FILES, 100),
    ),
}


@pytest.mark.parametrize(
    ("batch", "config", "now", "expected"), POLICY_CASES.values(), ids=POLICY_CASES.keys()
)
def test_the_sealing_policy_decides_from_the_open_batch_and_the_clock(
    batch: OpenBatch, config: AccumulatorConfig, now: float, expected: SealDecision
) -> None:
    decision = decide_seal(batch, config, now)
    assert (decision.reason, decision.files, decision.finished) == (
        expected.reason,
        expected.files,
        expected.finished,
    )
    assert decision.wait_s == pytest.approx(expected.wait_s)


# --- the accumulator with its sealer thread ------------------------------------------------------


def test_fifty_files_and_the_window_give_one_batch_of_fifty(
    acc: FileBatchAccumulator, clock: FakeClock
) -> None:
    acc.add_many(keys(50))
    assert acc.get_batch(timeout_s=0.3) is None  # the clock stands still: the window is open
    clock.advance(0.25)
    batch = acc.get_batch(timeout_s=5)
    assert batch is not None and len(batch) == 50 and batch.reason is SealReason.WINDOW
    assert acc.get_stats().pending_files == 0
    assert acc.get_batch(timeout_s=0.3) is None


def test_add_many_150_gives_100_now_and_50_after_the_window(
    acc: FileBatchAccumulator, clock: FakeClock
) -> None:
    acc.add_many(keys(150))
    first = acc.get_batch(timeout_s=5)  # the clock has not moved: sealed before any window
    assert first is not None and (len(first), first.reason) == (100, SealReason.MAX_FILES)
    assert acc.get_batch(timeout_s=0.3) is None
    clock.advance(0.25)
    second = acc.get_batch(timeout_s=5)
    assert second is not None and (len(second), second.reason) == (50, SealReason.WINDOW)
    assert {e.key.rel_path for e in first.entries}.isdisjoint(
        e.key.rel_path for e in second.entries
    )


def test_no_batch_ever_exceeds_max_files(acc: FileBatchAccumulator) -> None:
    acc.add_many(keys(1234))
    acc.force_flush()
    batches = collect(acc, 13)
    assert [len(b) for b in batches] == [100] * 12 + [34]
    assert len({e.key.rel_path for b in batches for e in b.entries}) == 1234


def test_an_idle_pipeline_seals_at_once_and_a_busy_one_gathers_the_next_batch(
    clock: FakeClock,
) -> None:
    # Eighths of a second add up exactly in binary, so the fake clock lands on each deadline.
    acc = started(AccumulatorConfig(window_ms=1000, max_files=100, idle_ms=125), clock)
    try:
        acc.add_many(keys(3))
        assert acc.get_batch(timeout_s=0.2) is None  # younger than idle_ms: more may follow
        clock.advance(0.125)
        first = acc.get_batch(timeout_s=5)
        assert first is not None and (len(first), first.reason) == (3, SealReason.IDLE)
        # While the first batch is in flight, new keys wait for it (or for the window).
        acc.add_many(keys(5, start=3))
        clock.advance(0.5)
        assert acc.get_batch(timeout_s=0.2) is None
        acc.done(first)  # the pipeline is idle again: what waited is sealed without a tick
        second = acc.get_batch(timeout_s=5)
        assert second is not None and (len(second), second.reason) == (5, SealReason.IDLE)
    finally:
        acc.stop(timeout_s=2)


def test_force_flush_sends_now_and_cancels_the_timer(clock: FakeClock) -> None:
    acc = started(AccumulatorConfig(window_ms=5000, max_files=100, idle_ms=None), clock)
    try:
        acc.add_many(keys(10))
        acc.force_flush()
        batch = acc.get_batch(timeout_s=5)  # the clock has not moved: the window did not end
        assert batch is not None and len(batch) == 10 and batch.reason is SealReason.FORCE
        assert acc.get_stats().pending_files == 0
        clock.advance(5.0)
        # The sealer looks again within its idle wait: nothing is left for the old timer.
        assert acc.get_batch(timeout_s=IDLE_WAIT_S + 0.2) is None
    finally:
        acc.stop()


def test_two_threads_adding_the_same_file_give_it_once() -> None:
    acc = started(AccumulatorConfig(window_ms=10_000, idle_ms=None))
    try:
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
        batch = acc.get_batch(timeout_s=5)
        assert batch is not None and [e.key.rel_path for e in batch.entries] == [same.rel_path]
        assert acc.get_batch(timeout_s=0.2) is None
        assert acc.get_stats().coalesced == 999
    finally:
        acc.stop()


def test_a_key_added_twice_before_sealing_is_sent_once_with_the_newest_trigger(
    acc: FileBatchAccumulator,
) -> None:
    k = keys(1)[0]
    acc.add(k, Trigger.WATCHER)
    acc.add(k, Trigger.RECONCILER)
    acc.force_flush()
    batch = acc.get_batch(timeout_s=5)
    assert batch is not None and len(batch) == 1
    assert batch.entries[0].trigger is Trigger.RECONCILER


def test_a_key_added_while_its_batch_waits_unread_in_the_queue_joins_that_batch() -> None:
    acc = started(AccumulatorConfig(window_ms=10_000, idle_ms=None))
    try:
        k = keys(1)[0]
        acc.add(k)
        acc.force_flush()
        assert wait_until(lambda: acc.get_stats().queue_depth == 1)
        acc.add(k, Trigger.RECONCILER)  # the batch is read after this: that read will see it
        assert acc.get_stats().pending_files == 0 and acc.get_stats().coalesced == 1
        batch = acc.get_batch(timeout_s=5)
        assert batch is not None and [e.key for e in batch.entries] == [k]
        acc.add(k)  # taken now, maybe read already: the change needs a batch of its own
        assert acc.get_stats().pending_files == 1
    finally:
        acc.stop()


def test_stop_flushes_everything_pending() -> None:
    acc = started(AccumulatorConfig(window_ms=10_000, idle_ms=None, max_files=100))
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


def test_a_consumer_waiting_for_a_batch_returns_as_the_sealer_ends_not_at_its_timeout() -> None:
    # v2's reader waits in get_batch(); its stop joined it, 80-90 ms a stop, until the timeout.
    acc = started(AccumulatorConfig(window_ms=10_000, idle_ms=None, max_files=100))
    acc.add_many(keys(150))
    got: list[Batch | None] = []
    returned = threading.Event()

    def consume() -> None:
        while (batch := acc.get_batch(timeout_s=60)) is not None:
            got.append(batch)
        returned.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    acc.stop()
    assert returned.wait(10), "get_batch() waited on after the sealer had ended"
    consumer.join()
    assert sum(len(b) for b in got if b is not None) == 150
    assert not acc.is_sealing() and acc.get_stats().queue_depth == 0
    started_at = time.monotonic()
    assert acc.get_batch(timeout_s=60) is None  # every later call returns at once too
    assert time.monotonic() - started_at < 10


def test_batches_arrive_in_order_and_backpressure_drops_nothing() -> None:
    acc = started(
        AccumulatorConfig(window_ms=1, max_files=10, max_queued_batches=1, max_pending_files=50)
    )
    produced = keys(2000)
    producer = threading.Thread(target=lambda: [acc.add(k) for k in produced])
    producer.start()
    seen: list[str] = []
    seqs: list[int] = []
    deadline = time.monotonic() + 30
    while len(seen) < 2000 and time.monotonic() < deadline:
        batch = acc.get_batch(timeout_s=0.05)
        if batch is None:
            continue
        assert acc.get_stats().pending_files <= 50  # memory stays bounded
        seqs.append(batch.seq)
        seen.extend(e.key.rel_path for e in batch.entries)
        time.sleep(0.001)  # a slow writer, so the queue fills; not synchronisation
    producer.join()
    acc.stop()
    assert sorted(seen) == sorted(k.rel_path for k in produced)
    assert seqs == sorted(seqs)


def test_a_big_add_many_lets_batches_be_sealed_taken_and_done_while_it_adds() -> None:
    """A reconciler adding thousands of keys holds the lock ADD_SLICE keys at a time: the
    sealer seals, the reader takes and the writer finishes batches meanwhile. The keys come
    from a generator that waits, past the first slice, until a batch was taken and done: had
    add_many held the lock for all of them, nothing could be taken and this would time out."""
    config = AccumulatorConfig(
        window_ms=10_000, max_files=100, idle_ms=None, max_files_under_backlog=None
    )
    acc = started(config)
    first_done = threading.Event()

    def slow_keys() -> Iterator[FileKey]:
        for i, key in enumerate(keys(3 * ADD_SLICE)):
            if i == 2 * ADD_SLICE:
                assert first_done.wait(10), "no batch was taken while add_many was adding"
            yield key

    adder = threading.Thread(target=acc.add_many, args=(slow_keys(),))
    adder.start()
    try:
        batch = acc.get_batch(timeout_s=10)
        assert batch is not None and len(batch) == 100
        assert batch.entries[0].key.rel_path.endswith("prt_00000.json")  # the oldest first
        acc.done(batch)
        first_done.set()
        adder.join(10)
        assert not adder.is_alive()
        got = collect(acc, 3 * ADD_SLICE // 100 - 1)
        paths = [e.key.rel_path for b in [batch, *got] for e in b.entries]
        assert paths == [k.rel_path for k in keys(3 * ADD_SLICE)]  # each once, in order
    finally:
        first_done.set()
        acc.stop()


def test_done_releases_only_its_own_batchs_paths() -> None:
    acc = started(AccumulatorConfig(window_ms=10_000, max_files=2, idle_ms=None))
    try:
        a, b, c = keys(3)
        acc.add_many([a, b])
        first = acc.get_batch(timeout_s=5)
        assert first is not None
        acc.add_many([a, c])  # a again: in a second batch while the first is in flight
        acc.force_flush()
        second = acc.get_batch(timeout_s=5)
        assert second is not None
        assert acc.pending_paths() == {a.rel_path, b.rel_path, c.rel_path}
        acc.done(first)
        assert acc.pending_paths() == {a.rel_path, c.rel_path}  # a's second batch holds it
        acc.done(second)
        assert acc.pending_paths() == set() and acc.is_idle()
    finally:
        acc.stop()


def test_add_later_waits_for_its_delay(acc: FileBatchAccumulator, clock: FakeClock) -> None:
    acc.add_later(keys(1)[0], delay_s=0.5)
    assert acc.get_stats().delayed_files == 1
    clock.advance(0.25)
    assert acc.get_batch(timeout_s=0.3) is None
    assert acc.get_stats().delayed_files == 1  # not due yet
    clock.advance(0.25)
    # Due now: the retry joins the open batch, whose window starts then.
    assert wait_until(lambda: acc.get_stats().pending_files == 1, timeout_s=5)
    assert acc.get_stats().delayed_files == 0
    clock.advance(0.25)
    batch = acc.get_batch(timeout_s=5)
    assert batch is not None and batch.entries[0].trigger is Trigger.RETRY


def test_stats_count_the_open_batch_and_pending_files_lists_it_newest_first(
    clock: FakeClock,
) -> None:
    slow = started(AccumulatorConfig(window_ms=10_000, idle_ms=None), clock)
    try:
        slow.add(keys(1)[0])
        clock.advance(1.0)
        slow.add(keys(1, 1)[0])
        clock.advance(0.5)
        listed = slow.pending_files(10)
        assert [p.rel_path for p in listed] == [keys(1, 1)[0].rel_path, keys(1)[0].rel_path]
        stats = slow.get_stats()
        assert stats.pending_files == 2 and stats.oldest_pending_age_s == pytest.approx(1.5)
        assert stats.queue_depth == 0 and stats.batches_sent == 0
    finally:
        slow.stop()


def test_under_a_backlog_adaptive_mode_seals_past_max_files_up_to_its_own_cap() -> None:
    acc = started(
        AccumulatorConfig(
            window_ms=1, max_files=10, max_queued_batches=2, max_files_under_backlog=50
        )
    )
    try:
        acc.add_many(keys(300))
        assert wait_until(lambda: acc.get_stats().queue_depth == 2)  # a backlog exists
        sizes = [len(b) for b in collect_files(acc, 300)]
        assert sum(sizes) == 300 and max(sizes) > 10 and max(sizes) <= 50
    finally:
        acc.stop()


def test_keys_arriving_while_the_queue_is_full_wait_open_and_seal_as_one_batch() -> None:
    acc = started(
        AccumulatorConfig(window_ms=1, max_files=10, max_files_under_backlog=500, idle_ms=None)
    )
    try:
        acc.add_many(keys(10))
        assert wait_until(lambda: acc.get_stats().queue_depth == 1)  # its one slot is taken
        acc.add_many(keys(200, 10))  # nothing seals them while the slot is taken
        first = acc.get_batch(timeout_s=5)
        assert first is not None and len(first) == 10
        second = acc.get_batch(timeout_s=5)  # the first is still in flight: adaptive cap
        assert second is not None and len(second) == 200
        assert [e.key for e in second.entries] == keys(200, 10)
    finally:
        acc.stop()


# --- the sealer's lifecycle -----------------------------------------------------------------------


def test_nothing_is_sealed_before_start_and_keys_added_before_it_are_kept() -> None:
    acc = FileBatchAccumulator(AccumulatorConfig(window_ms=10_000, idle_ms=None))
    try:
        acc.add_many(keys(5))
        acc.force_flush()
        assert acc.get_batch(timeout_s=0.2) is None
        assert not acc.is_sealing()
        acc.start()
        assert acc.is_sealing()
        batch = acc.get_batch(timeout_s=5)
        assert batch is not None and len(batch) == 5 and batch.reason is SealReason.FORCE
    finally:
        acc.stop()
    assert not acc.is_sealing()


def test_stop_without_start_returns_and_drain_pending_hands_everything_over() -> None:
    acc = FileBatchAccumulator(AccumulatorConfig(window_ms=10_000, idle_ms=None))
    acc.add_many(keys(3))
    acc.add_later(keys(1, 10)[0], delay_s=60)
    acc.stop(timeout_s=0.1)
    assert not acc.is_sealing()
    taken = acc.drain_pending()
    assert [e.key.rel_path for e in taken] == [k.rel_path for k in keys(3) + keys(1, 10)]
    assert acc.get_batch(timeout_s=0) is None


def test_abandon_releases_an_add_waiting_for_room_and_drops_what_comes_after() -> None:
    """A stop during a long catch-up: the reconciler's add waits for room while nobody takes
    batches (the writer is behind); abandon() lets it return at once with the rest dropped and
    counted, and keeps what was pending for stop() to flush."""
    config = AccumulatorConfig(
        window_ms=10_000, max_files=100, max_queued_batches=1, max_pending_files=50
    )
    acc = started(config)
    adding = threading.Thread(target=acc.add_many, args=(keys(1000),))
    adding.start()
    # Full: a batch sealed and queued, and the pending keys at their bound.
    assert wait_until(lambda: acc.get_stats().pending_files == 50, 10)
    assert wait_until(lambda: acc.get_stats().queue_depth == 1, 10)
    assert adding.is_alive()  # waiting for room: no batch is taken
    acc.abandon()
    adding.join(10)
    assert not adding.is_alive()
    acc.add_many(keys(5, start=2000))
    stopping = threading.Thread(target=acc.stop)  # it flushes: batches are taken meanwhile
    stopping.start()
    kept: list[str] = []
    while stopping.is_alive() or acc.get_stats().queue_depth:
        if (batch := acc.get_batch(timeout_s=0.05)) is not None:
            kept.extend(e.key.rel_path for e in batch.entries)
    stopping.join()
    assert len(kept) >= 50 and acc.dropped >= 5
    assert len(kept) + acc.dropped == 1005  # every key kept or counted as dropped
    assert sorted(kept) == sorted(k.rel_path for k in keys(len(kept)))  # the first ones kept
