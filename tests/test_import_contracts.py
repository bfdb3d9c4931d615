"""Contracts of the module map, checked at run time in a clean interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import indexer

FORBIDDEN_IN_CORE = ("textual", "textual_plotext", "plotext", "tui")


def _modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(indexer.__path__, "indexer.")
        if not m.name.endswith("__main__")
    )


def test_the_indexer_does_not_reach_the_tui() -> None:
    modules = _modules()
    assert len(modules) >= 8
    script = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_IN_CORE!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_pure_pieces_do_no_io_imports() -> None:
    script = (
        "import sys\n"
        "import indexer.storage, indexer.records\n"
        "print(','.join(m for m in ('duckdb', 'watchdog') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
