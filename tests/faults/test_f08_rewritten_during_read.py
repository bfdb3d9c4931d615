"""F8: a file rewritten while the reader holds it.

The reader stats, reads and stats again: if the stamp moved, or fewer bytes came than the file
holds, the read is 'pending' and retried. Whatever the timing, the file is never 'error', and
once the rewriting stops the index holds exactly the final bytes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import orjson
import pytest

from indexer.outcome import FileStatus
from indexer.pipeline import reader
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import Outcomes, census_of, poll, row, running_v2, settle, write_now
from tests.helpers import hash_of, read_in_python

REL = "part/msg_1/prt_1.json"
REWRITES = 2000


def version(n: int) -> bytes:
    """Valid JSON whose size swings between ~1 KB and ~200 KB from one version to the next."""
    size = 1_000 + (n * 7_919) % 200_000
    return orjson.dumps({"id": "prt_1", "type": "text", "text": f"v{n} " + "x" * size})


def test_a_file_rewritten_in_a_tight_loop_ends_with_its_final_bytes(root: Path, db: Path) -> None:
    outcomes = Outcomes()
    config = V2Config(reconciler=ReconcilerConfig(interval_s=3600))
    with running_v2(root, db, config, outcomes) as v2:
        write_now(root / REL, version(0))
        cursor = v2.cursor()
        poll(lambda: row(cursor, REL) == ("indexed", None, hash_of(version(0))), 20, "indexed")

        def rewrite() -> None:
            for n in range(1, REWRITES + 1):
                write_now(root / REL, version(n))  # truncate + write in place, like OpenCode

        writer = threading.Thread(target=rewrite)
        writer.start()
        writer.join(120)
        assert not writer.is_alive()
        final = hash_of(version(REWRITES))
        poll(lambda: row(cursor, REL) == ("indexed", None, final), 30, "the final version")
        cursor.close()
        settle(v2)
    seen = outcomes.of(REL)
    assert len(seen) > 2, "the reader never read the file while it was being rewritten"
    assert all(status is not FileStatus.ERROR for status, _ in seen), seen
    assert census_of(db, root) == []


class RewriteAfterRead:
    """The processor's read of a file's bytes: the first armed read of the target returns its
    bytes, then the file is rewritten before the reader's second stat."""

    def __init__(self, target: Path, new: bytes) -> None:
        self.target = str(target)
        self.new = new
        self.armed = False
        self.fired = threading.Event()
        self._read = reader._read

    def __call__(self, fd: int, limit: int) -> bytes:
        data = self._read(fd, limit)
        path = os.readlink(f"/proc/self/fd/{fd}")  # the file this descriptor reads
        if self.armed and path == self.target and not self.fired.is_set():
            self.fired.set()
            write_now(Path(self.target), self.new)
        return data


@pytest.mark.parametrize("same_size", [False, True], ids=["new-size", "same-size"])
def test_a_rewrite_between_read_and_second_stat_is_pending_then_the_final_bytes(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch, same_size: bool
) -> None:
    first = orjson.dumps({"id": "prt_1", "type": "text", "text": "first " * 50})
    middle = orjson.dumps({"id": "prt_1", "type": "text", "text": "middl " * 50})
    last = (
        orjson.dumps({"id": "prt_1", "type": "text", "text": "final " * 50})
        if same_size
        else orjson.dumps({"id": "prt_1", "type": "text", "text": "final " * 80})
    )
    assert (len(last) == len(middle)) is same_size
    write_now(root / REL, first)
    hook = RewriteAfterRead(root / REL, last)
    read_in_python(monkeypatch)
    monkeypatch.setattr(reader, "_read", hook)
    outcomes = Outcomes()
    with running_v2(
        root, db, V2Config(reconciler=ReconcilerConfig(interval_s=3600)), outcomes
    ) as v2:
        settle(v2)
        hook.armed = True
        write_now(root / REL, middle)  # its event makes the reader open the file
        assert hook.fired.wait(20), "the reader never opened the file"
        cursor = v2.cursor()
        poll(lambda: row(cursor, REL) == ("indexed", None, hash_of(last)), 20, "the final bytes")
        cursor.close()
        settle(v2)
    seen = outcomes.of(REL)
    assert (FileStatus.PENDING, "changed while being read") in seen, seen
    assert all(status is not FileStatus.ERROR for status, _ in seen), seen
    assert census_of(db, root) == []
