"""F27: symlinks are never followed, wherever they are found.

A link (to a file outside the root, to a file inside it, or to a folder) is recorded as
`skipped` with the reason `symlink`: by the startup scan, by the watcher when it appears while
running, and by the reconciler. No content from outside the root reaches the index, and a file
inside the root is indexed once, under its own path.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import census_of, poll, reading, row, running_v2, settle, write_now

SECRET = "the secret outside the root"


def part(pid: str, text: str) -> bytes:
    return orjson.dumps({"id": pid, "type": "text", "text": text})


def plant(root: Path, outside: Path, tag: str) -> dict[str, str]:
    """A real part, a link to it, a link to a file outside the root and a link to a folder."""
    write_now(outside / f"prt_{tag}_out.json", part(f"prt_{tag}_out", SECRET))
    write_now(root / f"part/msg_1/prt_{tag}_real.json", part(f"prt_{tag}_real", "inside"))
    links = {
        f"part/msg_1/prt_{tag}_in.json": f"prt_{tag}_real.json",
        f"part/msg_1/prt_{tag}_out.json": os.fspath(outside / f"prt_{tag}_out.json"),
        f"part/msg_{tag}_dir": os.fspath(outside),
    }
    for rel, target in links.items():
        os.symlink(target, root / rel)
    return links


def assert_no_secret(db: Path) -> None:
    with reading(db) as conn:
        hits = conn.execute(
            "SELECT count(*) FROM parts WHERE text_preview LIKE '%secret%'"
        ).fetchone()
        assert hits == (0,)
        ids = {r[0] for r in conn.execute("SELECT id FROM parts").fetchall()}
        assert not any(i.endswith("_out") or i.endswith("_in") for i in ids), ids


def test_links_found_by_the_scan_the_watcher_and_the_reconciler_are_skipped(
    tmp_path: Path, root: Path, db: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    at_start = plant(root, outside, "a")  # found by the startup scan
    config = V2Config(processor=ProcessorConfig(settle_s=0.2))
    with running_v2(root, db, config) as v2:
        cursor = v2.cursor()
        try:
            while_running = plant(root, outside, "b")  # found by the watcher
            links = {**at_start, **while_running}
            file_links = [rel for rel in links if rel.endswith(".json")]

            def skipped(rel: str) -> bool:
                found = row(cursor, rel)
                return found is not None and found[0] == "skipped"

            poll(lambda: all(skipped(rel) for rel in file_links), 20, "every file link skipped")
            for rel in file_links:
                found = row(cursor, rel)
                assert found is not None and (found[1] or "").startswith("symlink:"), found
            # A folder link is never entered: nothing under it is tracked.
            tracked = cursor.execute(
                "SELECT count(*) FROM file_index WHERE file_path LIKE 'part/msg\\_%\\_dir/%' "
                "ESCAPE '\\'"
            ).fetchone()
            assert tracked == (0,)
            # The reconciler agrees: nothing is new or modified once every link is recorded.
            report = v2.rescan()
            assert report is not None and report.new == () and report.modified == ()
            # A link retargeted from inside to outside the root stays skipped.
            os.unlink(root / "part/msg_1/prt_b_in.json")
            os.symlink(outside / "prt_b_out.json", root / "part/msg_1/prt_b_in.json")
            v2.rescan()
            settle(v2)
            assert skipped("part/msg_1/prt_b_in.json")
        finally:
            cursor.close()
        settle(v2)
    assert_no_secret(db)
    assert census_of(db, root) == []
