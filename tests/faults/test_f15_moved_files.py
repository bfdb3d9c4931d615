"""F15 (matrix F21): files and folders renamed or moved, live and while stopped.

A move is a delete of the old path plus a create of the new one. The old path ends 'deleted'
(or absent), the new one indexed, and the data rows, keyed by the record id that both paths
share, must belong to the file that exists: deleting the old path must not take the new
path's rows with it. Writers that write `name.json.tmp` and rename it into place never get the
temporary file indexed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import (
    census_of,
    owned_rows,
    poll,
    row,
    running_v2,
    settle,
    status_of,
    write_now,
)


def config(interval_s: float = 3600) -> V2Config:
    return V2Config(
        processor=ProcessorConfig(settle_s=0.2), reconciler=ReconcilerConfig(interval_s=interval_s)
    )


def message(mid: str, role: str = "user") -> bytes:
    return orjson.dumps({"id": mid, "role": role, "time": {"created": 1}})


# OpenCode's own atomic write (storage.ts atomicWrite in some releases): a hidden temporary file
# in the target's folder, fsync, then rename over the target.
TMP_NAMES = ("{name}.tmp", ".oc-{name}.4242.1764600000000.tmp")


@pytest.mark.parametrize("tmp_name", TMP_NAMES)
def test_an_atomic_tmp_then_rename_writer_never_gets_its_tmp_file_indexed(
    root: Path, db: Path, tmp_name: str
) -> None:
    with running_v2(root, db, config()) as v2:
        settle(v2)
        rels = [f"message/ses_1/msg_{i}.json" for i in range(50)]

        def write_atomically(rel: str, role: str) -> None:
            target = root / rel
            tmp = target.with_name(tmp_name.format(name=target.name))
            write_now(tmp, message(target.stem, role))
            os.replace(tmp, target)

        def roles() -> set[str]:
            found = cursor.execute("SELECT DISTINCT role FROM messages").fetchall()
            return {str(r[0]) for r in found}

        for rel in rels:
            write_atomically(rel, "user")
        cursor = v2.cursor()
        poll(lambda: all(status_of(cursor, r) == "indexed" for r in rels), 20, "all indexed")
        for rel in rels:  # each rename now replaces a file the index holds
            write_atomically(rel, "assistant")
        poll(lambda: roles() == {"assistant"}, 20, "every replaced file's new content")
        tmp_rows = cursor.execute("SELECT count(*) FROM file_index WHERE file_path LIKE '%.tmp'")
        assert tmp_rows.fetchone() == (0,)
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []


def test_a_file_moved_to_another_folder_while_watched_keeps_its_rows(root: Path, db: Path) -> None:
    old, new = "message/ses_A/msg_1.json", "message/ses_B/msg_1.json"
    write_now(root / old, message("msg_1"))
    (root / "message/ses_B").mkdir(parents=True)
    with running_v2(root, db, config()) as v2:
        settle(v2)
        os.rename(root / old, root / new)  # one FileMovedEvent: both paths in one batch
        cursor = v2.cursor()
        poll(lambda: status_of(cursor, new) == "indexed", 20, "the new path indexed")
        poll(lambda: status_of(cursor, old) in (None, "deleted"), 20, "the old path gone")
        assert owned_rows(cursor, new) == 1
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []


def test_a_folder_renamed_while_watched_keeps_its_rows(root: Path, db: Path) -> None:
    for i in range(3):
        write_now(root / f"message/ses_A/msg_{i}.json", message(f"msg_{i}"))
    with running_v2(root, db, config(interval_s=0.3)) as v2:
        settle(v2)
        os.rename(root / "message/ses_A", root / "message/ses_B")
        moved_at = time.time()
        assert v2.reconciler is not None
        reconciler = v2.reconciler
        poll(
            lambda: (reconciler.get_stats().last_scan_at or 0) > moved_at and v2.is_idle(0.3),
            20,
            "a reconcile after the move, then idle",
        )
        cursor = v2.cursor()
        assert row(cursor, "message/ses_A/msg_0.json") is not None
        assert status_of(cursor, "message/ses_A/msg_0.json") == "deleted"
        assert status_of(cursor, "message/ses_B/msg_0.json") == "indexed"
        cursor.close()
    assert census_of(db, root) == []


def test_a_folder_renamed_and_a_session_moved_while_stopped_keep_their_rows(
    root: Path, db: Path
) -> None:
    for i in range(3):
        write_now(root / f"message/ses_A/msg_{i}.json", message(f"msg_{i}"))
    write_now(root / "session/global/ses_A.json", orjson.dumps({"id": "ses_A", "title": "t"}))
    with running_v2(root, db, config()) as v2:
        settle(v2)
    os.rename(root / "message/ses_A", root / "message/ses_B")
    (root / "session/prj_1").mkdir()
    os.rename(root / "session/global/ses_A.json", root / "session/prj_1/ses_A.json")
    with running_v2(root, db, config()) as v2:  # the startup reconcile sees both sides
        settle(v2)
    assert census_of(db, root) == []
