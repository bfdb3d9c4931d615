"""Where Arrow's buffers come from in the indexer's process and its read workers: an allocator
that keeps freed memory for the next batch rather than one that gives it back to the system."""

from __future__ import annotations

import pyarrow as pa

from indexer.config import process_env

REUSING_BACKENDS = ("jemalloc", "system")
"""In order of preference. pyarrow's default, mimalloc, hands a batch's freed buffers back to the
system within milliseconds, and on Linux asks for huge pages: each batch's columns then fault in
fresh pages the kernel zeroes 2 MB at a time. In a first catch-up of 20,106 files that zeroing was
a fifth of the writer thread's samples (perf, ~120 ms of a 0.9 s run); with jemalloc the run
took 0.769 s against 0.849 s, with the system's malloc 0.783 s (10 alternated rounds,
docs/benchmarks.md, "Arrow's allocator")."""

CHOSEN_BY_USER = "ARROW_DEFAULT_MEMORY_POOL"
"""Arrow's own variable: when set, its choice stands."""


def reuse_freed_memory() -> None:
    """Make the first of REUSING_BACKENDS this pyarrow has the default allocator, unless the
    user chose one."""
    if process_env().get(CHOSEN_BY_USER):
        return
    supported = pa.supported_memory_backends()
    for name in REUSING_BACKENDS:
        if name in supported:
            pa.set_memory_pool(getattr(pa, f"{name}_memory_pool")())
            return
