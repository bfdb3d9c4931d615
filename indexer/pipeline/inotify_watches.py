"""The kernel's inotify watches as the watcher sees them: the per-user limit, and each folder
the kernel refuses to watch (watchdog passes over those silently)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from watchdog.observers.api import BaseObserver

WATCH_LIMIT_FILE = "/proc/sys/fs/inotify/max_user_watches"


def watch_limit() -> str:
    """The kernel's inotify watch limit as text, or "unknown"."""
    try:
        with open(WATCH_LIMIT_FILE) as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def guard_watch_adds(observer: BaseObserver, on_refused: Callable[[bytes, OSError], None]) -> None:
    """Make an inotify observer tell on_refused about each folder the kernel will not watch, and
    skip adding a watch a folder already has.

    watchdog swallows refusals for every folder but the root; its inotify instance is wrapped so
    a refusal is seen before that. A folder created with its subfolders is added twice (by the
    walk of its parent's creation, then by its own creation event), and watchdog's warning for
    that formats every watch of the tree: a burst of new folders cost quadratic time and filled
    the log. Other observers (other systems) are left as they are."""
    fd = getattr(observer, "_inotify_fd", None)
    add = getattr(fd, "add_callback", None)
    watches = getattr(fd, "_watch_for_wd", None)
    if fd is None or add is None or not isinstance(watches, dict):
        return
    added: dict[tuple[bytes, object], tuple[int, int, int]] = {}
    """(folder, callback id) -> (watch descriptor, device, inode) of the folder watched there."""

    def add_callback(path: bytes, mask: int, callback: object, id_: object) -> int:
        try:
            st = os.lstat(path)
        except OSError:
            st = None  # gone or unreadable: watchdog's own add decides
        known = added.get((path, id_))
        if st is not None and known is not None and known[1:] == (st.st_dev, st.st_ino):
            watch = watches.get(known[0])  # the same folder (not one made anew at its path)
            if watch is not None and watch.mask == mask and id_ in watch.callbacks:
                return known[0]
        try:
            wd: int = add(path, mask, callback, id_)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                on_refused(path, exc)
            raise
        if st is not None:
            added[(path, id_)] = (wd, st.st_dev, st.st_ino)
        return wd

    fd.add_callback = add_callback
