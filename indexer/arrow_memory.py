"""Where Arrow's buffers come from in the indexer's process and its read workers: an allocator
that keeps freed memory for the next batch rather than one that gives it back to the system.

Arrow's C++ reads its choice (`ARROW_DEFAULT_MEMORY_POOL`) once, as pyarrow loads, and uses it
for every buffer it allocates itself (the scans DuckDB makes of our tables among them); pyarrow's
own default, set later, covers only the buffers pyarrow builds. So the choice is made before
pyarrow loads: by the CLI package as it loads (every entry point, `ocindex`, `python -m indexer`
and `python -m tui`, loads it first), and in the environment the read workers start with."""

from __future__ import annotations

import sys
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from indexer.config import default_env

CHOSEN_BY_USER = "ARROW_DEFAULT_MEMORY_POOL"
"""Arrow's own variable: when set, its choice stands."""

PREFERRED = "jemalloc"
"""pyarrow's default, mimalloc, hands a batch's freed buffers back to the system within
milliseconds, and on Linux asks for huge pages: each batch's columns then fault in fresh pages
the kernel zeroes 2 MB at a time. In a first catch-up of 20,106 files that zeroing was a fifth
of the writer thread's samples (perf, ~120 ms of a 0.9 s run); with jemalloc the run took
0.769 s against 0.849 s, with the system's malloc 0.783 s (10 alternated rounds, each chosen
with Arrow's variable as this module now does; docs/benchmarks.md, "Arrow's allocator")."""
FALLBACK = "system"
"""Where this pyarrow was built without jemalloc: every build has the system's malloc."""


@cache  # the pyarrow a process finds does not change: its header is read once
def reusing_backend() -> str:
    """PREFERRED if this pyarrow has it, else FALLBACK; told without loading pyarrow, from the
    build options its wheel ships (an unsupported choice would only make Arrow warn)."""
    spec = find_spec("pyarrow")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        header = Path(folder, "include", "arrow", "util", "config.h")
        try:
            if "#define ARROW_JEMALLOC\n" in header.read_text(encoding="utf-8", errors="replace"):
                return PREFERRED
        except OSError:
            continue
    return FALLBACK


def reuse_freed_memory() -> None:
    """Make the reusing allocator Arrow's default for this process and the ones it starts, unless
    the user chose one. Once pyarrow has loaded, only pyarrow's own buffers follow the choice."""
    chosen = default_env(CHOSEN_BY_USER, reusing_backend())
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and chosen in pyarrow.supported_memory_backends():
        pyarrow.set_memory_pool(getattr(pyarrow, f"{chosen}_memory_pool")())
