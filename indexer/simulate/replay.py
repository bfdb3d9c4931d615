"""A load generator that cannot be the bottleneck: OpenCode files generated beforehand are read
into memory before the clock starts, then written into a watched tree at a fixed pace or as fast
as the disk takes them. Never indexes, never generates content while the clock runs.

    python -m indexer.simulate.replay SOURCE_ROOT TARGET_ROOT [--rate R] [--limit N]

prints one JSON line: files written, seconds, the writer's own files/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from indexer.scan import walk_files


def load(source: Path, limit: int | None = None) -> list[tuple[str, bytes]]:
    """Every file under `source` (relative path, bytes), in the order the tree lists them."""
    out: list[tuple[str, bytes]] = []
    for rel, _, _ in walk_files(source):
        out.append((rel, (source / rel).read_bytes()))
        if limit is not None and len(out) >= limit:
            break
    return out


def replay(
    files: Iterable[tuple[str, bytes]], target: Path, rate: float = 0.0
) -> tuple[int, float]:
    """Write each file at its path under target (folders made as needed); `rate` files/s, or
    as fast as possible when 0. Returns (files written, seconds)."""
    made: set[str] = set()
    start = time.perf_counter()
    written = 0
    for rel, data in files:
        folder = os.path.dirname(rel)
        if folder not in made:
            os.makedirs(os.path.join(target, folder), exist_ok=True)
            made.add(folder)
        if rate > 0:
            due = start + written / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # pacing the load, not synchronising a test
        with open(os.path.join(target, rel), "wb") as fh:
            fh.write(data)
        written += 1
    return written, time.perf_counter() - start


def replay_in_process(
    source: Path, target: Path, rate: float = 0.0, limit: int | None = None
) -> dict[str, Any]:
    """Run this module in its own process (the writer never takes the measured process's CPU),
    start it once its bytes are loaded, wait for it and return its JSON line."""
    command = [sys.executable, "-m", __name__, str(source), str(target), "--rate", str(rate)]
    if limit is not None:
        command += ["--limit", str(limit)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the replay writer did not start (exit {proc.wait()})")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        found: dict[str, Any] = json.loads(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a tree of OpenCode files to copy")
    parser.add_argument("target", type=Path, help="the watched storage root")
    parser.add_argument("--rate", type=float, default=0.0, help="files/s (0: unthrottled)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files")
    args = parser.parse_args(argv)
    files = load(args.source, args.limit)  # before the clock: the bytes are ready
    print("ready", flush=True)
    sys.stdin.readline()
    written, seconds = replay(files, args.target, args.rate)
    rate = written / seconds if seconds > 0 else 0.0
    print(json.dumps({"files": written, "seconds": round(seconds, 4), "files_per_s": round(rate)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
