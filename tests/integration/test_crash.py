"""kill -9 of a running `ocindex run` during heavy indexing, then a restart: the database
matches the disk, with no duplicate keys and no row without its file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from indexer.simulate import OpenCodeSimulator
from indexer.store.database import open_database
from tests.helpers import census, wait_until


def start_run(root: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "indexer",
            "run",
            "--storage",
            str(root),
            "--db",
            str(db),
            "--indexer",
            "v2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_lines(proc: subprocess.Popen[str], sink: list[str]) -> threading.Thread:
    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            sink.append(line)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


def test_kill_9_during_heavy_indexing_then_restart_matches_disk(tmp_path: Path) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=31).write_sessions(30)
    proc = start_run(root, db)
    lines: list[str] = []
    read_lines(proc, lines)
    stop = threading.Event()  # the writer runs until the kill, however loaded the machine is
    try:
        assert wait_until(lambda: any("running v2" in line for line in lines), 30), lines
        live = OpenCodeSimulator(root, seed=32)
        writer = threading.Thread(target=live.run, args=(0, 60.0, stop))
        writer.start()
        # Kill while the writer is still producing and batches are being committed.
        assert wait_until(lambda: len(list((root / "part").iterdir())) > 700, 20)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stop.set()
        writer.join()
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    restart = subprocess.run(
        [
            sys.executable,
            "-m",
            "indexer",
            "index",
            "--storage",
            str(root),
            "--db",
            str(db),
            "--indexer",
            "v2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restart.returncode == 0, restart.stderr
    conn = open_database(db, read_only=True)
    try:
        assert census(conn, root) == []
    finally:
        conn.close()


def test_sigterm_stops_cleanly_with_one_summary_line(tmp_path: Path) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    OpenCodeSimulator(root, seed=3).write_sessions(5)
    proc = start_run(root, db)
    lines: list[str] = []
    read_lines(proc, lines)
    assert wait_until(lambda: any("running v2" in line for line in lines), 30), lines
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    summary = [line for line in out.splitlines() if line.strip()]
    assert len(summary) == 1 and summary[0].startswith("ocindex run stopped after")
    conn = open_database(db, read_only=True)
    try:
        assert census(conn, root) == []
    finally:
        conn.close()
