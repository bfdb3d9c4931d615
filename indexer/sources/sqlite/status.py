"""What `ocindex status` says about the sources: each database found, probed read-only now, and
what file_index holds per source. Never writes to a database or to the index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from indexer.kinds import SOURCE_PREFIX_PATTERN
from indexer.sources.sqlite.source import make_sources


def indexed_by_source(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """file_index rows by namespace ('json' for files, else the source prefix) and status."""
    try:
        rows = conn.execute(
            f"SELECT CASE WHEN regexp_matches(file_path, '{SOURCE_PREFIX_PATTERN}') "
            "THEN regexp_extract(file_path, '^([a-z]+:.*:)[a-z_]+/', 1) ELSE 'json' END AS ns, "
            "coalesce(status, 'indexed'), count(*) FROM file_index GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    except duckdb.Error:  # no file_index yet, or a v1-era one without statuses
        return {}
    out: dict[str, dict[str, int]] = {}
    for ns, status, n in rows:
        out.setdefault(str(ns), {})[str(status)] = int(n)
    return out


def watermarks(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    try:
        rows = conn.execute(
            "SELECT source, table_name, time_updated_ms FROM source_watermarks ORDER BY 1, 2"
        ).fetchall()
    except duckdb.Error:
        return {}
    out: dict[str, dict[str, int]] = {}
    for source, table, ms in rows:
        out.setdefault(str(source), {})[str(table)] = int(ms)
    return out


def sources_status(
    conn: duckdb.DuckDBPyConnection | None, databases: Sequence[Path], storage_root: Path
) -> dict[str, Any]:
    """What `ocindex status` says about sources: each database found (probed read-only now),
    and what file_index holds per source."""
    indexed = indexed_by_source(conn) if conn is not None else {}
    marks = watermarks(conn) if conn is not None else {}
    found = []
    for source in make_sources(databases, storage_root):
        info = source.probe()
        info["indexed"] = indexed.get(source.prefix, {})
        info["watermarks"] = marks.get(source.prefix, {})
        found.append(info)
    known = {s["prefix"] for s in found}
    return {
        "json": {"root": str(storage_root), "indexed": indexed.get("json", {})},
        "sqlite": found,
        "other_indexed": {ns: c for ns, c in indexed.items() if ns != "json" and ns not in known},
        "v1_note": V1_NOTE,
    }


V1_NOTE = "v1 reads the JSON files only; OpenCode's SQLite store (1.2+) is indexed by v2 alone"


def _counts(statuses: Mapping[str, int]) -> str:
    main = statuses.get("indexed", 0)
    rest = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s != "indexed" and n)
    return f"{main} indexed" + (f" ({rest})" if rest else "")


def format_sources(status: Mapping[str, Any]) -> list[str]:
    """The text lines of `ocindex status` about sources."""
    lines = [
        f"source json     {status['json']['root']}: {_counts(status['json']['indexed'])}",
    ]
    for found in status["sqlite"]:
        rows = found.get("rows") or {}
        state = str(found["state"])
        what = f"{state}, {sum(rows.values())} rows" if state == "ok" else state
        lines.append(
            f"source sqlite   {found['path']}: {what}; {_counts(found['indexed'])} "
            f"(keys {found['prefix']}…)"
        )
        if found.get("message"):
            lines.append(f"                {found['message']}")
    if not status["sqlite"]:
        lines.append(
            "source sqlite   none found (--opencode-db, $OPENCODE_DB, opencode*.db beside the "
            "storage folder)"
        )
    for ns, statuses in status["other_indexed"].items():
        lines.append(f"indexed earlier {ns} (not found now): {_counts(statuses)}")
    lines.append(f"note            {status['v1_note']}")
    return lines
