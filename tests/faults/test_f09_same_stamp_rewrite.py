"""F9: a rewrite that keeps the size and then restores the old mtime (os.utime back to the old
mtime_ns), so the file's stamp (mtime_ns, size) is exactly what file_index holds.

What catches it: only a watcher event. The reconciler compares stamps and cannot see it.

Documented bound: a content change invisible to (mtime_ns, size) is caught only by events. With
v2 running, the rewrite's events bring the new bytes in. A change made while v2 is stopped is
NOT caught by the restart's reconcile: the index keeps the old hash and the old rows until the
file's stamp changes again. The second test asserts exactly that one stale file, so that a
future deep verify (re-hashing racy or sampled files, or comparing st_ctime_ns, which utime
cannot restore) turns it into a visible change of behaviour.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import census_of, poll, reading, row, running_v2, settle, write_now
from tests.helpers import hash_of

REL = "part/msg_1/prt_1.json"
BEFORE = orjson.dumps({"id": "prt_1", "type": "text", "text": "the old words"})
AFTER = orjson.dumps({"id": "prt_1", "type": "text", "text": "the new words"})
CONFIG = V2Config(reconciler=ReconcilerConfig(interval_s=0.3))  # scans often: it cannot help


def rewrite_keeping_the_stamp(path: Path) -> None:
    old = os.stat(path)
    write_now(path, AFTER)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    now = os.stat(path)
    assert (now.st_mtime_ns, now.st_size) == (old.st_mtime_ns, old.st_size)


def test_with_the_watcher_running_the_event_catches_a_same_stamp_rewrite(
    root: Path, db: Path
) -> None:
    assert len(AFTER) == len(BEFORE) and AFTER != BEFORE
    write_now(root / REL, BEFORE)
    with running_v2(root, db, CONFIG) as v2:
        settle(v2)
        rewrite_keeping_the_stamp(root / REL)
        cursor = v2.cursor()
        poll(lambda: row(cursor, REL) == ("indexed", None, hash_of(AFTER)), 20, "the new hash")
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []


def test_while_stopped_a_same_stamp_rewrite_is_invisible_to_the_restart_reconcile(
    root: Path, db: Path
) -> None:
    write_now(root / REL, BEFORE)
    with running_v2(root, db, CONFIG) as v2:
        settle(v2)
    rewrite_keeping_the_stamp(root / REL)  # nothing is watching
    with running_v2(root, db, CONFIG) as v2:
        settle(v2)
        assert v2.reconciler is not None
        scans = v2.reconciler.get_stats().scans_completed
        poll(
            lambda: (
                v2.reconciler is not None and v2.reconciler.get_stats().scans_completed >= scans + 2
            ),
            10,
            "two more periodic scans",
        )
        settle(v2)
    with reading(db) as conn:
        assert row(conn, REL) == ("indexed", None, hash_of(BEFORE)), "the stale hash stays"
    # Exactly the documented blind spot, and nothing else: the old hash and the old row.
    assert census_of(db, root) == [
        f"{REL}: content hash differs from disk",
        "parts: 1 rows missing or stale, 1 unexpected",
    ]
