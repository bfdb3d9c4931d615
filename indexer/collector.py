"""How often Python's cycle collector runs in each of our processes: the indexer's, its read
workers' and its watcher's. Each makes a stream of small objects and few cycles."""

from __future__ import annotations

import gc

YOUNG_OBJECTS_BEFORE_GC = 50_000
"""Python's default (700) runs the cycle collector so often under a catch-up's stream of small
objects that it took 16 s of CPU in a 1M-file `index` of 115 s (0.05 s with this threshold;
docs/benchmarks.md, "Issue 14: the garbage collector"). In a read worker it took 1.4-1.7 µs of
a file's ~22 (133 collections for 20,106 files; none with this threshold)."""


def collect_less() -> None:
    """Collect cycles less often: objects made before the call (modules, classes) are never
    traversed again, and the young generation is collected every YOUNG_OBJECTS_BEFORE_GC
    allocations instead of 700."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS_BEFORE_GC, middle, old)
