"""The tracker's Bloom filter (of paths, of records): never a wrong "no", rarely a wrong "maybe"."""

from __future__ import annotations

from indexer.store.bloom_filter import BloomFilter


def test_every_path_added_may_be_held_and_few_others_are() -> None:
    f = BloomFilter()
    added = [f"part/msg_{i // 100:07d}/prt_{i:09d}.json" for i in range(200_000)]
    assert f.maybe_held(added[:10]) == []  # empty: holds nothing
    f.add(added)
    assert f.maybe_held(added) == added and f.added == 200_000
    others = [f"part/msg_x{i}/prt_new{i}.json" for i in range(100_000)]
    assert len(f.maybe_held(others)) < 1_000  # about 0.02% at this size; 1% would be a bug
