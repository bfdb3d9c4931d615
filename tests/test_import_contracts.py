"""Contracts of the module map, checked at run time in a clean interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

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


def _drivers_loaded_by(imports: str) -> str:
    """Which of DuckDB and watchdog a clean interpreter holds after these imports."""
    script = (
        f"import sys\nimport {imports}\n"
        "print(','.join(m for m in ('duckdb', 'watchdog') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_pure_pieces_do_no_io_imports() -> None:
    assert _drivers_loaded_by("indexer.storage, indexer.records") == ""


def test_a_reading_worker_starts_without_duckdb_or_watchdog() -> None:
    # A first catch-up starts one per core; DuckDB alone is a third of a worker's start.
    assert _drivers_loaded_by("indexer.pipeline.read_worker") == ""


def test_no_module_imports_itself_through_others() -> None:
    """No import circle anywhere in indexer/ or tui/ (TYPE_CHECKING imports included)."""
    import grimp

    graph = grimp.build_graph("indexer", "tui")
    circles = [
        (importer, imported)
        for importer in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.find_shortest_chain(importer=imported, imported=importer)
    ]
    assert circles == []


def test_no_module_is_longer_than_450_lines() -> None:
    root = Path(indexer.__file__).resolve().parents[1]
    long = {
        path.relative_to(root).as_posix(): n
        for folder in ("indexer", "tui")
        for path in (root / folder).rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert long == {}


def test_every_public_name_loads_and_is_documented() -> None:
    api = (Path(indexer.__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    for name in indexer.__all__:
        assert getattr(indexer, name) is not None
        assert f"`{name}" in api, f"docs/api.md does not mention {name}"
