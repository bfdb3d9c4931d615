"""Events per written file, not run in CI: the watcher alone on a fresh tree while the replay
writer (another process) copies N pre-generated OpenCode files into it as fast as it can, then
the same files again over the first copies (rewrites in place, every folder already watched),
then, once every file is deleted, the same files as new files in folders already watched.

    .venv/bin/python tests/benchmarks/bench_events.py [--files 5000] [--dir /dev/shm/ocindex-events]

Runs each observer in turn: the one that handles events on watchdog's inotify thread (Linux's
default, pipeline.inotify_inline) and watchdog's own. Prints one JSON line per observer and pass:
the kernel's inotify events, events handed to the watcher, keys it submitted, each per written
file, and the watcher's CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

from watchdog.observers.inotify_c import InotifyFD

from indexer.kinds import FileKey
from indexer.pipeline import watcher as watcher_module
from indexer.pipeline.accumulator import Trigger
from indexer.pipeline.watcher import StorageWatcher
from indexer.scan import walk_files
from indexer.simulate.replay import replay_in_process
from indexer.simulate.simulator import OpenCodeSimulator


class Counts:
    def __init__(self) -> None:
        self.raw = 0
        self.keys = 0
        self.lock = threading.Lock()

    def submit(self, keys: list[FileKey], trigger: Trigger) -> None:
        with self.lock:
            self.keys += len(keys)


def wait_quiet(watcher: StorageWatcher) -> None:
    """Return once no event came for 0.5 s: every event raised so far has been handled."""
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 0.5:
        time.sleep(0.05)  # polling a counter, not synchronising
        now = watcher.get_stats().events
        if now != seen:
            seen, quiet_since = now, time.monotonic()


def run_pass(
    watcher: StorageWatcher, counts: Counts, source: Path, target: Path, limit: int
) -> dict[str, object]:
    wait_quiet(watcher)
    raw0, events0, keys0 = counts.raw, watcher.get_stats().events, counts.keys
    cpu0 = time.process_time()
    writer = replay_in_process(source, target, limit=limit)
    wait_quiet(watcher)
    files = int(writer["files"])
    return {
        "files": files,
        "writer_files_per_s": writer["files_per_s"],
        "inotify_events_per_file": round((counts.raw - raw0) / files, 2),
        "handled_events_per_file": round((watcher.get_stats().events - events0) / files, 2),
        "keys_per_file": round((counts.keys - keys0) / files, 2),
        "watcher_cpu_s": round(time.process_time() - cpu0, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm/ocindex-events"))
    args = parser.parse_args()
    source = args.dir / "source"
    marker = args.dir / f".complete-{args.files}"
    if not marker.exists():
        shutil.rmtree(args.dir, ignore_errors=True)
        OpenCodeSimulator(source, seed=303).write_sessions(args.files // 60 + 10)
        marker.touch()
    counts = Counts()
    handle_event = InotifyFD.handle_event

    def counting(self: InotifyFD, event: object) -> None:
        counts.raw += 1  # one inotify thread: no lock needed for a benchmark's tally
        handle_event(self, event)  # type: ignore[arg-type]

    InotifyFD.handle_event = counting  # type: ignore[method-assign]
    observers = {
        "inline": watcher_module.new_observer,
        "watchdog": watcher_module.watchdog_observer,
    }
    for name, observer in observers.items():
        watcher_module.new_observer = observer  # type: ignore[assignment]
        target = args.dir / "target"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        watcher = StorageWatcher(target, counts.submit, lambda why: None)
        watcher.start()
        try:
            for phase in ("new", "rewrite", "new_in_watched_folders"):
                if phase == "new_in_watched_folders":
                    for rel, _, _ in walk_files(target):
                        (target / rel).unlink()
                found = run_pass(watcher, counts, source, target, args.files)
                print(json.dumps({"observer": name, "pass": phase, **found}))
        finally:
            watcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
