"""F4: `mkdir -p` of brand-new folders immediately followed by a write, 1,000 times, while v2
runs with the production event filter.

inotify is not recursive: a file written into a folder before its watch exists raises no event
of its own. The watcher must list a new folder when it sees it, so the events alone find every
file: the reconciler is set to never run after startup, and a final scan must find nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import census_of, running_v2, scalar, settle
from tests.helpers import wait_until

ROUNDS = 1000


def target(i: int) -> tuple[str, bytes]:
    """Three layouts, one to three new folders deep each time."""
    if i % 3 == 0:
        rel = f"message/ses_{i:04d}/msg_{i:04d}.json"
        doc: dict[str, object] = {"id": f"msg_{i:04d}", "role": "user"}
    elif i % 3 == 1:
        rel = f"part/msg_{i:04d}/prt_{i:04d}.json"
        doc = {"id": f"prt_{i:04d}", "type": "text", "text": "hi"}
    else:  # the legacy layout: session/part/<session>/<message>/<part>.json
        rel = f"session/part/ses_{i:04d}/msg_{i:04d}/prt_{i:04d}.json"
        doc = {"id": f"prt_{i:04d}", "type": "text", "text": "legacy"}
    return rel, orjson.dumps(doc)


def test_mkdir_p_then_write_is_seen_by_events_alone(root: Path, db: Path) -> None:
    config = V2Config(
        processor=ProcessorConfig(settle_s=0.5), reconciler=ReconcilerConfig(interval_s=3600)
    )
    with running_v2(root, db, config) as v2:
        for i in range(ROUNDS):
            rel, data = target(i)
            path = root / rel
            os.makedirs(path.parent)  # new folders every time, at once followed by the write
            path.write_bytes(data)
        cursor = v2.cursor()
        indexed = "SELECT count(*) FROM file_index WHERE status = 'indexed'"
        wait_until(lambda: scalar(cursor, indexed) == ROUNDS, 60, 0.1)
        cursor.close()
        report = v2.rescan()  # the truth: anything the events missed shows up here
        assert report is not None
        assert report.new == () and report.modified == (), (
            f"events missed {len(report.new)} new and {len(report.modified)} modified files, "
            f"e.g. {(report.new + report.modified)[:3]}"
        )
        settle(v2)
    assert census_of(db, root) == []
