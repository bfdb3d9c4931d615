"""How long a stop takes, not run in CI: start `ocindex run` on a tree, send it SIGINT (or
SIGTERM) after a delay, and time its exit; then count what the index holds.

    .venv/bin/python tests/benchmarks/bench_stop.py --storage /dev/shm/ocindex-scale-4 \
        --db /tmp/stop.duckdb [--after 6] [--signal TERM] [--keep-index] [--indexer v2]

With a fresh index (the default: the database is removed first), the signal lands in the first
catch-up when --after is shorter than the catch-up (a million files take 15-30 s). With
--keep-index, in what a start on that index does. The run's stderr (-v) is printed at the end.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
OCINDEX = [sys.executable, "-m", "indexer"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage", type=Path, required=True)
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--after", type=float, default=6.0, help="seconds before the signal")
    p.add_argument("--signal", choices=("INT", "TERM"), default="INT")
    p.add_argument("--indexer", choices=("v1", "v2"), default="v2")
    p.add_argument("--keep-index", action="store_true")
    args = p.parse_args()
    if not args.keep_index:
        for path in (args.db, args.db.with_name(args.db.name + ".wal")):
            path.unlink(missing_ok=True)
    argv = [*OCINDEX, "-v", "run", "--storage", str(args.storage), "--db", str(args.db)]
    child = subprocess.Popen(
        [*argv, "--indexer", args.indexer],
        cwd=CHECKOUT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT; `run` sets its own handler, but say it plainly.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(args.after)  # the load: a stop lands wherever the run is by then
    sent = time.monotonic()
    child.send_signal(getattr(signal, f"SIG{args.signal}"))
    out, err = child.communicate()
    took = time.monotonic() - sent
    print(err.rstrip())
    print(out.rstrip())
    print(f"exit {child.returncode}, {took:.1f} s after SIG{args.signal}")
    status = subprocess.run(
        [*OCINDEX, "status", "--storage", str(args.storage), "--db", str(args.db)],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
    )
    print("\n".join(line for line in status.stdout.splitlines() if line.startswith("file_index")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
