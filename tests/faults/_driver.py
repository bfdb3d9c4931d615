"""A child process for fault tests that need a fault inside another process: it runs `ocindex`
with a hook, an in-process v2 driven over stdin/stdout, or the migrations with a kill -9 at a
chosen point. Never used by the product; a test starts it with one JSON spec argument.

    python -m tests.faults._driver '{"mode": "cli", "argv": [...], "hang_in_tx": {...}}'
    python -m tests.faults._driver '{"mode": "v2", "root": ..., "db": ..., ...}'
    python -m tests.faults._driver '{"mode": "migrate", "db": ..., "kill_at": "checkpoint"}'
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any


def _hang_in_tx(batch: int, marker: str) -> None:
    """From the batch-th commit on, write its rows, then hang inside the open transaction after
    naming its files in `marker`: the test kills the process there."""
    from indexer.pipeline import processor

    original = processor.apply_reads
    calls = [0]

    def hooked(conn: Any, tracker: Any, reads: Any, prior: Any, trust_prior: bool = True) -> Any:
        kept = original(conn, tracker, reads, prior, trust_prior)
        calls[0] += 1
        if calls[0] >= batch:
            tmp = Path(marker + ".tmp")
            tmp.write_text(json.dumps([r.key.rel_path for r in reads]))
            os.replace(tmp, marker)
            while True:  # inside BEGIN ... (no COMMIT): wait for SIGKILL
                time.sleep(1)
        return kept

    processor.apply_reads = hooked  # type: ignore[assignment]


def _hang_in_first_load(batch: int, files: int, marker: str, until: str | None = None) -> None:
    """Load any first catch-up in bulk, `files` at a time, and from its batch-th commit on write
    the batch's rows and file_index rows, then hang inside the open transaction after naming its
    files in `marker`; with `until`, only the batch-th commit waits, until that file exists."""
    from indexer.pipeline import first_load
    from indexer.pipeline.v2 import UnifiedIndexerV2
    from indexer.store.tracking import FileTracker

    first_load.MIN_FILES = 0  # the test's tree is small
    first_load.BATCH_FILES = files
    # `run` too (which loads in bulk only from what its accumulator holds, 50,000 files).
    UnifiedIndexerV2._bulk_from = lambda self: first_load.MIN_FILES  # type: ignore[method-assign]
    original = FileTracker.record_new_indexed
    calls = [0]

    def hooked(self: FileTracker, paths: list[str], *columns: Any) -> None:
        original(self, paths, *columns)
        calls[0] += 1
        if calls[0] == batch or (calls[0] > batch and until is None):
            tmp = Path(marker + ".tmp")
            tmp.write_text(json.dumps(paths))
            os.replace(tmp, marker)
            while until is None or not os.path.exists(until):  # inside BEGIN ... (no COMMIT)
                time.sleep(0.01 if until else 1)

    FileTracker.record_new_indexed = hooked  # type: ignore[method-assign]


def refuse_watches(marker: bytes) -> None:
    """Make the kernel's inotify_add_watch fail with ENOSPC (the watch limit) for every path
    containing marker: the limit cannot be lowered without root sysctl on a shared machine."""
    import ctypes
    import errno

    from watchdog.observers import inotify_c

    real = inotify_c.inotify_add_watch

    def add_watch(fd: int, path: bytes, mask: int) -> int:
        if marker in path:
            ctypes.set_errno(errno.ENOSPC)
            return -1
        return real(fd, path, mask)

    inotify_c.inotify_add_watch = add_watch


def run_cli(spec: dict[str, Any]) -> int:
    if "refuse_watches" in spec:
        refuse_watches(str(spec["refuse_watches"]).encode())
    hang = spec.get("hang_in_tx")
    if hang:
        _hang_in_tx(int(hang["batch"]), str(hang["marker"]))
    hang = spec.get("hang_in_first_load")
    if hang:
        until = hang.get("until")
        _hang_in_first_load(
            int(hang["batch"]),
            int(hang["files"]),
            str(hang["marker"]),
            None if until is None else str(until),
        )
    options = {k: float(spec[k]) for k in ("idle_checkpoint_s", "give_up_s") if k in spec}
    if options:  # the writer's idle checkpoint and how long it reopens an invalidated database
        from indexer.pipeline.writer import IndexWriter

        opened = IndexWriter.open

        def open_with(path: Any, **more: Any) -> IndexWriter:
            return opened(path, **{**options, **more})

        setattr(IndexWriter, "open", open_with)  # noqa: B010 (a test hook, not a method)
    from indexer.cli import main

    return main([str(a) for a in spec["argv"]])


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def run_v2(spec: dict[str, Any]) -> int:
    from indexer.pipeline.reader import ProcessorConfig
    from indexer.pipeline.reconciler import ReconcilerConfig
    from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config

    config = V2Config(
        processor=ProcessorConfig(settle_s=float(spec.get("settle_s", 0.3))),
        reconciler=ReconcilerConfig(interval_s=float(spec.get("interval_s", 30.0))),
        watch=bool(spec.get("watch", True)),
    )
    from indexer.pipeline.writer import IndexWriter

    options = {k: float(spec[k]) for k in ("idle_checkpoint_s", "give_up_s") if k in spec}
    writer = IndexWriter.open(Path(spec["db"]), **options)
    v2 = UnifiedIndexerV2(Path(spec["root"]), writer=writer, config=config)
    v2.start()
    _reply({"ready": True})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "stop":
            v2.stop()
            writer.close()
            _reply({"ok": True})
            return 0
        if cmd["cmd"] == "checkpoint":
            try:
                writer.checkpoint()
                _reply({"ok": True, "error": None})
            except Exception as exc:
                _reply({"ok": False, "error": str(exc)})
        elif cmd["cmd"] == "stats":
            stats = v2.stats()
            _reply(
                {"condition": stats.condition, "fatal": stats.fatal, "reopened": writer.reopened}
            )
        if cmd["cmd"] == "idle":
            _reply({"ok": v2.wait_idle(float(cmd.get("timeout_s", 60)), 0.3)})
        elif cmd["cmd"] == "wait_status":
            assert v2.reconciler is not None
            cursor = v2.cursor()
            deadline = time.monotonic() + float(cmd.get("timeout_s", 30))
            found = None
            while True:
                found = cursor.execute(
                    "SELECT status, error_message, content_hash, attempts FROM file_index "
                    "WHERE file_path = ?",
                    [cmd["path"]],
                ).fetchone()
                if (found and found[0] == cmd["status"]) or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            cursor.close()
            scans = v2.reconciler.get_stats().scans_completed
            _reply({"ok": bool(found and found[0] == cmd["status"]), "row": found, "scans": scans})
    v2.stop()
    writer.close()
    return 0


class _KillAt:
    """Wraps a connection; kill -9 the process when a statement matching `at` is about to run."""

    def __init__(self, conn: Any, at: str) -> None:
        self._conn = conn
        self._at = at

    def execute(self, sql: str, *args: Any) -> Any:
        text = " ".join(sql.split()).upper()
        version = str(args[0][-1]) if args and args[0] else ""
        if self._at == "checkpoint" and text == "CHECKPOINT":
            os.kill(os.getpid(), signal.SIGKILL)  # every migration committed, none checkpointed
        inside = self._at.startswith("meta:") and text.startswith("INSERT INTO META")
        if inside and version == self._at.split(":", 1)[1]:
            os.kill(os.getpid(), signal.SIGKILL)  # inside that migration's transaction
        return self._conn.execute(sql, *args)


def run_migrate(spec: dict[str, Any]) -> int:
    from indexer.store.database import open_database
    from indexer.store.schema import migrate

    conn = open_database(Path(spec["db"]))
    kill_at = str(spec.get("kill_at", "after"))
    if kill_at == "after":
        migrate(conn)
        os.kill(os.getpid(), signal.SIGKILL)  # right after migrate() returned
    migrate(_KillAt(conn, kill_at))  # type: ignore[arg-type]
    conn.close()
    return 0


def main() -> int:
    spec = json.loads(sys.argv[1])
    mode = spec["mode"]
    if mode == "cli":
        return run_cli(spec)
    if mode == "v2":
        return run_v2(spec)
    if mode == "migrate":
        return run_migrate(spec)
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main())
