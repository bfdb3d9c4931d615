"""F26: a file that does not parse and whose mtime lies in the future.

Settling used to count from the mtime, so such a file stayed pending for ever, was read again
every few seconds and held `index` for its whole settle timeout. It now settles by how long
ocindex has seen it unchanged (its own clock): `index` ends in seconds with the file `error`
and its reason, and a future-dated file that parses is simply indexed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import orjson

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import census_of, poll, reading, row, run_cli, running_v2, write_now

BROKEN = "session/global/ses_future.json"
WHOLE = "session/global/ses_whole.json"
A_DAY = 86_400.0


def future(path: Path, seconds: float = A_DAY) -> None:
    ahead = time.time() + seconds
    os.utime(path, (ahead, ahead))


def test_index_does_not_wait_on_a_broken_file_dated_in_the_future(root: Path, db: Path) -> None:
    write_now(root / BROKEN, b'{"id": "ses_future", "title": "cut')
    write_now(root / WHOLE, orjson.dumps({"id": "ses_whole", "title": "fine"}))
    future(root / BROKEN)
    future(root / WHOLE)
    t0 = time.monotonic()
    done = run_cli(
        "index", "--storage", root, "--db", db, "--indexer", "v2", "--json",
        "--settle-timeout", 300,
    )  # fmt: skip
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert took < 60, f"index waited {took:.0f}s on a future-dated file"
    summary = json.loads(done.stdout)
    assert summary["pending"] == 0 and summary["error"] == 1 and summary["indexed"] == 1
    with reading(db) as conn:
        found = row(conn, BROKEN)
    assert found is not None and found[0] == "error"
    assert (found[1] or "").startswith("invalid_json:") and "future" in (found[1] or "")
    assert census_of(db, root) == []


def test_the_daemon_settles_a_future_dated_file_by_its_own_clock(root: Path, db: Path) -> None:
    config = V2Config(processor=ProcessorConfig(settle_s=0.5))
    with running_v2(root, db, config) as v2:
        cursor = v2.cursor()
        try:
            write_now(root / BROKEN, b'{"id": "ses_future", "title": "cut')
            future(root / BROKEN)
            poll(lambda: (row(cursor, BROKEN) or ("",))[0] == "error", 20, "the file settled")
            found = row(cursor, BROKEN)
            assert found is not None and "future" in (found[1] or "")
            # Settled is final: no retry is scheduled, nothing stays pending.
            assert v2.wait_idle(10, 0.3)
            assert v2.stats().delayed_files == 0
        finally:
            cursor.close()
    assert census_of(db, root) == []


def test_files_dated_past_what_a_bigint_holds_are_indexed_and_then_seen_unchanged(
    root: Path, db: Path
) -> None:
    # mtime_ns of 2400 and 1600 are past a BIGINT: they used to end `index` in an OverflowError.
    far = {WHOLE: 13_569_465_600 * 10**9, "session/global/ses_old.json": -11_676_096_000 * 10**9}
    for rel, ns in far.items():
        write_now(root / rel, orjson.dumps({"id": Path(rel).stem, "title": "dated"}))
        os.utime(root / rel, ns=(ns, ns))
    for run in ("first", "second"):
        done = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["indexed"], summary["error"]) == (2, 0), (run, summary)
        assert "0 modified" in done.stderr, (run, done.stderr)  # the stamp held, not refused
    with reading(db) as conn:
        stamps = dict(conn.execute("SELECT file_path, mtime_ns FROM file_index").fetchall())
    assert stamps == {WHOLE: 2**63 - 1, "session/global/ses_old.json": -(2**63)}
    assert census_of(db, root) == []
