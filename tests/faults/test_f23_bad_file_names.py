"""F23: file (and folder) names that are not valid UTF-8, anywhere in the tree.

Python hands such names over surrogate-escaped, which DuckDB and Arrow refuse. They are stored
with their bad bytes as `\\xNN` and skipped with the reason `bad_name`: `index` exits 0 with no
traceback, the daemon's reconciles keep working (a deletion is still caught), and the innocent
neighbours of a bad name land.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import (
    census_of,
    poll,
    row,
    run_cli,
    running_v2,
    settle,
    status_of,
    write_now,
)

BAD_FILE = b"part/msg_1/prt_caf\xe9.json"
BAD_FOLDER = b"part/msg_\xff\xfe/prt_inside.json"
STORED_FILE = "part/msg_1/prt_caf\\xe9.json"
STORED_FOLDER = "part/msg_\\xff\\xfe/prt_inside.json"


def part(pid: str) -> bytes:
    return orjson.dumps({"id": pid, "type": "text", "text": f"hello from {pid}"})


def write_raw(root: Path, rel: bytes, data: bytes) -> None:
    """Write a file whose name is raw bytes (not necessarily UTF-8)."""
    path = os.path.join(os.fsencode(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def neighbours(root: Path, n: int = 5) -> list[str]:
    rels = [f"part/msg_1/prt_{i}.json" for i in range(n)]
    for rel in rels:
        write_now(root / rel, part(Path(rel).stem))
    return rels


def test_index_skips_names_that_are_not_utf8_and_indexes_their_neighbours(
    root: Path, db: Path
) -> None:
    good = neighbours(root)
    write_raw(root, BAD_FILE, part("prt_cafe"))
    write_raw(root, BAD_FOLDER, part("prt_inside"))
    done = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert summary["indexed"] == len(good) and summary["skipped"] == 2
    assert census_of(db, root) == []
    # Indexing again finds nothing new: the escaped names match the disk.
    again = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert again.returncode == 0, again.stderr
    assert census_of(db, root) == []


def test_the_daemon_records_a_bad_name_and_its_reconciles_keep_working(
    root: Path, db: Path
) -> None:
    config = V2Config(processor=ProcessorConfig(settle_s=0.2))
    with running_v2(root, db, config) as v2:
        cursor = v2.cursor()
        try:
            write_raw(root, BAD_FILE, part("prt_cafe"))  # seen by the watcher
            good = neighbours(root)
            poll(lambda: status_of(cursor, STORED_FILE) == "skipped", 20, "the bad name skipped")
            found = row(cursor, STORED_FILE)
            assert found is not None and (found[1] or "").startswith("bad_name:")
            poll(
                lambda: all(status_of(cursor, rel) == "indexed" for rel in good),
                20,
                "the neighbours indexed",
            )
            write_raw(root, BAD_FOLDER, part("prt_inside"))
            report = v2.rescan()  # a reconcile over the bad names works
            assert report is not None
            poll(lambda: status_of(cursor, STORED_FOLDER) == "skipped", 20, "the bad folder")
            os.unlink(os.path.join(os.fsencode(root), BAD_FILE))
            os.unlink(root / good[0])
            poll(lambda: status_of(cursor, STORED_FILE) == "deleted", 20, "the bad name deleted")
            poll(lambda: status_of(cursor, good[0]) == "deleted", 20, "a neighbour deleted")
            assert v2.rescan() is not None
            assert v2.reconciler is not None and v2.reconciler.get_stats().scans_completed >= 3
        finally:
            cursor.close()
        settle(v2)
        assert v2.stats().db_errors == 0
    assert census_of(db, root) == []
