"""Where the live endpoint of a database listens: a Unix socket beside it, or, when that path is
too long for a socket, one named after it in an owner-only runtime folder. Never opens a socket.
"""

from __future__ import annotations

import hashlib
import ipaddress
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
ACTION_SNAPSHOT = "snapshot"
ACTION_COMPARE = "compare"
ACTION_FLUSH = "flush"
ACTION_RESCAN = "rescan"
ACTION_RETRY = "retry"
ACTION_SWITCH = "switch"
ACTION_ROLLOUT = "rollout"
ACTION_THRESHOLD = "rollout_threshold"
ACTION_HEALTH = "health"
ENGINE_ACTIONS = frozenset(
    {
        ACTION_SNAPSHOT,
        ACTION_COMPARE,
        ACTION_FLUSH,
        ACTION_RESCAN,
        ACTION_RETRY,
        ACTION_SWITCH,
        ACTION_ROLLOUT,
        ACTION_THRESHOLD,
        ACTION_HEALTH,
    }
)
"""The actions an attached dashboard drives the engine with (indexer.live.host.engine_call)."""


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


def tcp_location(host: str, port: int) -> str:
    return f"grpc+tcp://[{host}]:{port}" if ":" in host else f"grpc+tcp://{host}:{port}"


def loopback(address: str) -> tuple[str, int]:
    """(host, port) of `--listen HOST:PORT` when HOST is a loopback address (127.0.0.1, another
    127.x, [::1], or localhost); AddressError otherwise: the endpoint has no authentication, so
    it never listens where another machine could reach it. Port 0 asks for a free port."""
    host, colon, port_text = address.strip().rpartition(":")
    if not colon or not host or not port_text:
        raise AddressError(f"--listen {address!r}: expected HOST:PORT, e.g. 127.0.0.1:8815")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise AddressError(
            f"--listen {address}: {host!r} is not an IP address; use 127.0.0.1 or [::1]"
        ) from None
    if not ip.is_loopback:
        raise AddressError(
            f"--listen {address}: {host} is not a loopback address; the endpoint has no "
            "authentication, so it listens on 127.0.0.1 or [::1] only"
        )
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise AddressError(f"--listen {address}: the port must be 0 to 65535, got {port_text!r}")
    return str(ip), port
