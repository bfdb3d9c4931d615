"""Closing the terminal (SIGHUP) or a SIGTERM ends the dashboard as `q` does: the demo's temporary
tree is removed. A real `python -m tui --demo` in a pseudo-terminal, signalled from outside."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0


def demo_trees(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("ocindex-demo-*"))


def read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    """The terminal output up to and including `marker`; fails at the deadline."""
    seen = b""
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} on the screen; saw {seen[-400:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            seen += os.read(fd, 65536)
    return seen


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_signal_from_outside_removes_the_demo_tree(tmp_path: Path, signum: int) -> None:
    master, slave = pty.openpty()
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO), "TERM": "xterm"}
    env.pop("OPENCODE_DB", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "tui", "tui", "--demo"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    os.close(slave)
    try:
        read_until(master, b"DEMO", time.monotonic() + DEADLINE_S)
        assert len(demo_trees(tmp_path)) == 1
        if signum == signal.SIGHUP:
            os.close(master)  # the terminal window closes, then its processes get SIGHUP
            master = -1
        child.send_signal(signum)
        child.wait(DEADLINE_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if master >= 0:
            os.close(master)
    assert demo_trees(tmp_path) == []
