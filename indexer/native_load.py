"""Loads the small C libraries `make` builds in indexer/native (and a wheel holds) with ctypes.
Each says its ABI: a library built from another version of its source, or none at all, is not
used, and that part runs in Python with the same results."""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def load(path: Path, function: str, abi: int, fallback: str) -> ctypes.CDLL | None:
    """The library at path if it has `function` and `<function>_abi()` returns abi; else None,
    said with `fallback` (what runs instead) unless the library was never built."""
    try:
        library = ctypes.CDLL(os.fspath(path))
        version = getattr(library, f"{function}_abi")
        version.restype = ctypes.c_int
        getattr(library, function)
    except (OSError, AttributeError) as e:
        if path.exists():
            log.warning("%s: %s cannot be used (%s)", fallback, path, e)
        return None
    if (found := version()) != abi:
        log.warning("%s: %s is of ABI %d, not %d (run make)", fallback, path, found, abi)
        return None
    return library
