"""F2: the indexer process (and its watcher process) is SIGSTOPped while 20,000 files are
written, then SIGCONTed.

The kernel queue holds max_queued_events (16,384 by default) events; each new file raises at
least two (IN_CREATE, IN_CLOSE_WRITE), so the queue overflows and events are lost for good.
watchdog only logs the overflow; the watcher must notice it and ask for a reconcile at once
(from its own process: its log line and its request reach the indexer over the pipe), and the
reconcile must find every file the events lost.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson
import pytest

from tests.faults.support import census_of, cli, reading, scalar, spawned
from tests.helpers import children_running

QUEUE_LIMIT = Path("/proc/sys/fs/inotify/max_queued_events")
WATCHED_FOLDERS = 40
NEW_FOLDERS = 400


def files_needed() -> int:
    limit = int(QUEUE_LIMIT.read_text()) if QUEUE_LIMIT.exists() else 16_384
    return max(20_000, limit // 2 + 1000)  # >= 2 events a file: well past the queue


def message(sid: str, mid: str) -> bytes:
    return orjson.dumps({"id": mid, "sessionID": sid, "role": "user", "time": {"created": 1}})


def test_sigstop_while_files_pour_in_overflows_and_the_reconcile_catches_all(
    root: Path, db: Path
) -> None:
    if not QUEUE_LIMIT.exists():
        pytest.skip("no inotify on this system")
    total = files_needed()
    if total > 200_000:
        pytest.skip(f"max_queued_events is {QUEUE_LIMIT.read_text().strip()}: too slow to overflow")
    sessions = [f"ses_{i:03d}" for i in range(WATCHED_FOLDERS)]
    for sid in sessions:  # folders that exist (and are watched) before the indexer stops
        (root / "message" / sid).mkdir(parents=True)
    with spawned(cli("run", "--storage", root, "--db", db, "--indexer", "v2")) as run:
        run.wait_for("running v2", 60)
        watchers = children_running(run.pid, "indexer.pipeline.watch_process")
        assert len(watchers) == 1, run.log()  # the process that reads the inotify queue
        run.signal(signal.SIGSTOP)
        os.kill(watchers[0], signal.SIGSTOP)
        try:
            in_new_folders = NEW_FOLDERS * 5
            for i in range(total - in_new_folders):  # into watched folders: events pile up
                sid = sessions[i % len(sessions)]
                path = root / "message" / sid / f"msg_{i:06d}.json"
                path.write_bytes(message(sid, f"msg_{i:06d}"))
            for i in range(in_new_folders):  # into folders no watch knows yet
                mid = f"msg_new{i // 5:04d}"
                folder = root / "part" / mid
                os.makedirs(folder, exist_ok=True)
                part = {"id": f"prt_{i:05d}", "messageID": mid, "type": "text", "text": "x"}
                (folder / f"prt_{i:05d}.json").write_bytes(orjson.dumps(part))
        finally:
            os.kill(watchers[0], signal.SIGCONT)
            run.signal(signal.SIGCONT)
        run.wait_for("Inotify queue overflowed", 60)
        # The watcher logs this before it asks for the scan, so the next "reconcile:" line
        # is the scan the overflow asked for (or a later one).
        asked = run.wait_for("reconciling now", 60)
        run.wait_for("reconcile: ", 60, after=asked)
        run.signal(signal.SIGTERM)  # a clean stop commits everything submitted
        assert run.wait(180) == 0, run.log()
    log = "\n".join(run.err)
    assert "Inotify queue overflowed" in log
    assert "events may have been lost (inotify queue overflow): reconciling now" in log
    with reading(db) as conn:
        caught = scalar(
            conn, "SELECT coalesce(max(new_files), 0) FROM reconcile_log WHERE scan_id > 1"
        )
        indexed = scalar(conn, "SELECT count(*) FROM file_index WHERE status = 'indexed'")
    assert caught > 0, "the overflow reconcile found nothing: the events cannot have lost any"
    assert indexed == total
    assert census_of(db, root) == []
