"""The DuckDB file: opening it with the settings the writer relies on, the errors a user sees,
and the one way to run a transaction. Never keeps a connection: callers own what they open.
"""

from __future__ import annotations

import logging
import os
import random
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from indexer.config import lock_wait_s

log = logging.getLogger(__name__)


class DatabaseError(Exception):
    """The database cannot be opened or used; the message is one line for the user."""


class DatabaseLocked(DatabaseError):
    """Another process holds the database file; `holder` names it ("process N (exe)")."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
FIRST_RETRY_S = 0.02
LONGEST_RETRY_S = 0.25
"""While another process holds the file, retries start this soon and back off to this."""
OWNER_ONLY = 0o600


def open_database(
    path: Path | str, read_only: bool = False, wait_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database file with the settings the writer relies on.

    While another process holds the file (even a reader that opens it for a moment), opening is
    retried with backoff for wait_s seconds (default $OCINDEX_LOCK_WAIT_S, 5); then it raises
    DatabaseLocked naming the holder. Opened for writing, the file is kept owner-only: a new one
    is made 0600, an existing one anybody may read is tightened to 0600 with one log line.
    """
    path = Path(path)
    wait_s = lock_wait_s() if wait_s is None else wait_s
    if not read_only:
        make_folder(path.parent)
    existed = path.exists()
    if existed and not path.is_dir() and not path.is_file():  # a folder: DuckDB's own error
        # DuckDB's open() of a fifo waits for a writer, forever.
        raise DatabaseError(
            f"cannot open database {path}: not a regular file (a fifo, socket or device)"
        )
    deadline = time.monotonic() + wait_s
    step = FIRST_RETRY_S
    while True:
        try:
            conn = _connect(path, read_only)
            break
        except DatabaseLocked as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                still = f", still after {wait_s:g}s" if wait_s > 0 else ""
                raise DatabaseLocked(
                    f"database {path} is in use by {exc.holder}{still}; "
                    "stop that process or pass another --db",
                    exc.holder,
                ) from None
            log.debug("database %s is in use by %s; retrying", path, exc.holder)
            time.sleep(min(step * random.uniform(0.5, 1.5), left))  # no lockstep with a loop
            step = min(step * 2, LONGEST_RETRY_S)
    if not read_only:
        keep_private(path, created=not existed)
        keep_private(path.with_name(path.name + ".wal"))
    return conn


THREADS = 2
"""DuckDB's threads for the database's work; held lower for a while by a first catch-up read on
workers (pipeline.first_load) and by live queries (live.gate), which put it back after."""


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    # Measured on a bulk index of 20,106 files and of 100,000 (docs/benchmarks.md, "Issue 14
    # measurements"): DuckDB's default 16MB threshold costs 8% more CPU; 256MB, threads=1,
    # preserve_insertion_order=true and memory limits of 256MB-1GB changed neither CPU nor peak
    # RSS beyond the noise (DuckDB itself held 65 MB after 100,000 files).
    config: dict[str, str | bool | int | float | list[str]] = {
        # Automatic checkpoints inside commits cost 300-600 ms; we checkpoint when idle instead.
        "checkpoint_threshold": "1GB",
        # Insertion order on bulk loads blew past 6 GB in measurements (DESIGN §4).
        "preserve_insertion_order": "false",
        "memory_limit": "2GB",
        "threads": str(THREADS),
    }
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        text = str(exc)
        holder = _LOCK_HOLDER.search(text)
        if holder or "Could not set lock" in text:
            who = f"process {holder['pid']} ({holder['exe']})" if holder else "another process"
            raise DatabaseLocked(f"database {path} is in use by {who}", who) from None
        raise DatabaseError(f"cannot open database {path}: {text.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise DatabaseError(f"cannot open database {path}: {str(exc).splitlines()[0]}") from None


def set_threads(conn: duckdb.DuckDBPyConnection, threads: int) -> int:
    """Run the database's work on this many of DuckDB's threads from now on (a setting of the
    whole database, not of the connection); returns the count it had."""
    row = conn.execute("SELECT current_setting('threads')").fetchone()
    conn.execute(f"SET threads = {int(threads)}")
    return int(row[0]) if row else int(threads)


def make_folder(folder: Path) -> None:
    """Create the database's folder if needed (owner-only, 0700); refuse one we cannot write in,
    since DuckDB writes its WAL there and the rollout file lives beside the database."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create the folder {folder}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseError(
            f"the folder {folder} is read-only: ocindex writes the database's WAL and "
            "rollout file there; make it writable or pass another --db"
        )


def keep_private(file: Path, created: bool = False) -> None:
    """Make a file just created owner-only (0600); tighten an existing one open to every user
    to owner-only, saying so once (once tightened, it is not open any more). A mode the owner
    chose for a group (0640) is kept."""
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
        if created:
            os.chmod(file, OWNER_ONLY)
        elif mode & 0o007:
            os.chmod(file, mode & 0o700)
            log.warning(
                "%s was open to every user (%04o); made it owner-only (%04o), as ocindex "
                "keeps its files",
                file,
                mode,
                mode & 0o700,
            )
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot make %s owner-only: %s", file, exc.strerror)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: committed when it ends, rolled back when it raises.

    A failed COMMIT may leave no transaction to roll back; then the COMMIT's own error is the
    one raised, never the ROLLBACK's.
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except duckdb.Error as exc:
            log.debug("rollback after a failed transaction: %s", exc)
        raise
