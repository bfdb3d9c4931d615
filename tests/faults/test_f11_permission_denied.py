"""F11: permission denied (chmod 000), then restored.

While a file cannot be read it is 'error' with an 'unreadable:' reason (its old rows dropped);
the reconciler retries unreadable files on every scan, so once the permission is back the file
is indexed within one reconcile, with no event needed.

We run as root here, and root's CAP_DAC_OVERRIDE ignores chmod 000. So the real-kernel test
runs the indexer in a child whose bounding set drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
(util-linux `setpriv`): it is still uid 0 and owns the files, but the kernel now checks their
mode. Where that is impossible the test is skipped with the reason; the second test injects the
same OSError(EACCES) into the processor's read of the bytes and proves the statuses and the
recovery.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconcile_report import ReconcileReport
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import V2Config
from tests.faults.support import (
    census_of,
    driver,
    owned_rows,
    poll,
    row,
    running_v2,
    settle,
    spawned,
    status_of,
    write_now,
)
from tests.helpers import before_each_read, wait_until

DROP_DAC = ["--bounding-set", "-dac_override,-dac_read_search"]


def part(pid: str) -> bytes:
    return orjson.dumps({"id": pid, "type": "text", "text": f"text of {pid}"})


def unprivileged_prefix(probe: Path) -> list[str]:
    """The argv prefix that makes chmod 000 bite for a child, or skip saying why it cannot."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root (chmod 000 is ignored) and util-linux setpriv is missing")
    probe.write_bytes(b"{}")
    probe.chmod(0)
    try:
        tried = subprocess.run(
            [setpriv, *DROP_DAC, sys.executable, "-c", f"open({str(probe)!r}, 'rb')"],
            capture_output=True,
            check=False,
        )
    finally:
        probe.chmod(0o644)
        probe.unlink()
    if tried.returncode == 0:
        pytest.skip("running as root and dropping CAP_DAC_OVERRIDE did not make chmod 000 bite")
    return [setpriv, *DROP_DAC]


@pytest.mark.parametrize("what", ["file", "folder"])
def test_chmod_000_is_unreadable_error_then_indexed_by_a_reconcile_after_chmod_back(
    tmp_path: Path, root: Path, db: Path, what: str
) -> None:
    prefix = unprivileged_prefix(tmp_path / "probe.json")
    for i in range(5):
        write_now(root / f"part/msg_ok/prt_{i}.json", part(f"prt_{i}"))
    locked = root / "part/msg_locked"
    target = "part/msg_locked/prt_x.json"
    write_now(root / target, part("prt_x"))
    if what == "file":
        (root / target).chmod(0)  # unreadable from the start
    spec = {
        "mode": "v2",
        "root": root,
        "db": db,
        "watch": False,  # no event can help: only the reconciler retries
        "interval_s": 0.3,
        "settle_s": 0.3,
    }
    try:
        with spawned(driver(spec), prefix=prefix, stdin=True) as child:
            assert wait_until(lambda: bool(child.out), 60), child.log()
            if what == "folder":  # indexed first, then its folder is locked
                assert child.send({"cmd": "wait_status", "path": target, "status": "indexed"})["ok"]
                locked.chmod(0)
            denied = child.send({"cmd": "wait_status", "path": target, "status": "error"})
            assert denied["ok"], denied
            _, message, content_hash, _ = denied["row"]  # type: ignore[misc]
            assert message.startswith("unreadable: Permission denied"), message
            assert content_hash is None
            if what == "file":
                (root / target).chmod(0o644)
            else:
                locked.chmod(0o755)
            back = child.send({"cmd": "wait_status", "path": target, "status": "indexed"})
            assert back["ok"], back
            assert back["scans"] > denied["scans"]  # type: ignore[operator]
            assert child.send({"cmd": "stop"})["ok"]
            assert child.wait(60) == 0, child.log()
    finally:
        locked.chmod(0o755)
        (root / target).chmod(0o644)
    assert census_of(db, root) == []


def test_injected_eacces_is_unreadable_error_then_recovered_by_the_reconciler(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, old = "part/msg_1/prt_new.json", "part/msg_1/prt_old.json"
    write_now(root / old, part("prt_old"))
    denied: set[str] = set()

    def guard(path: str) -> None:
        if os.path.relpath(path, root) in denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    before_each_read(monkeypatch, guard)
    config = V2Config(
        processor=ProcessorConfig(settle_s=0.3), reconciler=ReconcilerConfig(interval_s=0.3)
    )
    with running_v2(root, db, config) as v2:
        settle(v2)
        assert v2.reconciler is not None
        reconciler = v2.reconciler
        cursor = v2.cursor()
        assert owned_rows(cursor, old) == 1
        denied.update({new, old})
        write_now(root / new, part("prt_new"))
        write_now(root / old, part("prt_old"))  # rewritten: its event makes the reader try
        for rel in (new, old):
            poll(lambda rel=rel: (row(cursor, rel) or ("",))[0] == "error", 20, f"{rel} error")
            _, message, _ = row(cursor, rel)  # type: ignore[misc]
            assert message == "unreadable: Permission denied", message
        assert owned_rows(cursor, old) == 0, "an unreadable file keeps no rows it cannot vouch for"
        scans = reconciler.get_stats().scans_completed
        poll(lambda: reconciler.get_stats().scans_completed >= scans + 2, 10, "two scans")
        assert (row(cursor, new) or ("",))[0] == "error", "retried while denied: still error"
        denied.clear()  # the permission is back; nothing on disk changes, so no event comes
        for rel in (new, old):
            poll(lambda rel=rel: (row(cursor, rel) or ("",))[0] == "indexed", 20, f"{rel} back")
        assert owned_rows(cursor, old) == 1
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []


def test_an_unreadable_file_is_a_retry_for_the_reconciler_not_a_catch_every_scan(
    root: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rel = "part/msg_1/prt_1.json"
    write_now(root / rel, part("prt_1"))
    st = (root / rel).stat()

    def deny(path: str) -> None:
        if os.path.relpath(path, root) == rel:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    before_each_read(monkeypatch, deny)
    config = V2Config(
        processor=ProcessorConfig(settle_s=0.3), reconciler=ReconcilerConfig(interval_s=0.2)
    )
    with running_v2(root, db, config) as v2:
        assert v2.reconciler is not None
        reconciler = v2.reconciler
        cursor = v2.cursor()
        poll(lambda: status_of(cursor, rel) == "error", 10, "error")
        since = time.time()

        def later() -> list[ReconcileReport]:
            return [r for r in reconciler.recent if r.started_at > since]

        poll(lambda: len(later()) >= 3, 10, "three scans after the error was committed")
        stamp = cursor.execute("SELECT mtime_ns, size FROM file_index WHERE file_path = ?", [rel])
        assert stamp.fetchone() == (st.st_mtime_ns, st.st_size), "the row must keep the stamp"
        assert all(rel not in r.modified for r in later()), "reported 'modified' every scan"
        assert all(rel in r.retried for r in later())
        assert sum(r.catches for r in later()) == 0
        monkeypatch.undo()  # the permission is back
        poll(lambda: status_of(cursor, rel) == "indexed", 20, "indexed")
        cursor.close()
        settle(v2)
    assert census_of(db, root) == []
