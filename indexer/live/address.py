"""Where the live endpoint of a database listens: a Unix socket beside it, or, when that path is
too long for a socket, one named after it in an owner-only runtime folder. Never opens a socket.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from indexer.config import process_env

MAX_SOCKET_PATH = 100
"""sun_path holds 108 bytes on Linux (104 on macOS); keep a margin."""
ACTION_PING = "ping"
ACTION_STATUS = "status"
ACTION_ROLLBACK = "rollback"


class AddressError(Exception):
    """No safe place for the socket; the message is one line for the user."""


def socket_path(db: Path | str) -> Path:
    """The socket of the database at `db`, the same in every process that names it."""
    db = Path(db).expanduser().resolve()
    beside = db.with_name(db.name + ".sock")
    if len(os.fsencode(beside)) <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(db)).hexdigest()[:24]
    return runtime_folder() / f"{digest}.sock"


def runtime_folder() -> Path:
    """$XDG_RUNTIME_DIR/ocindex, else ocindex-UID in the temporary folder; owner-only."""
    base = process_env().get("XDG_RUNTIME_DIR", "")
    folder = (
        Path(base) / "ocindex"
        if base and Path(base).is_dir()
        else Path(tempfile.gettempdir()) / f"ocindex-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise AddressError(f"{folder} is not an owner-only folder of this user")
    return folder


def location(path: Path) -> str:
    return f"grpc+unix://{path}"
