"""What `ocindex status` reports (the index's counts, each version's figures, every source found
now) as JSON or text lines. Never writes: it reads through the connection it is handed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from indexer.metrics import compare
from indexer.read_model import (
    JSON_NAMESPACE,
    IndexCounts,
    existing_tables,
    index_counts,
    indexed_by_source,
    source_watermarks,
)
from indexer.rollout import Choice
from indexer.snapshot import Comparison
from indexer.sources.sqlite import make_sources
from indexer.sources.tree import discover_legacy_trees, make_tree_sources

V1_NOTE = (
    "v1 reads the JSON files only; OpenCode's SQLite store (1.2+) and legacy "
    "project/<id>/storage trees are indexed by v2 alone"
)


@dataclass(frozen=True, slots=True)
class JsonSourceStatus:
    root: str
    indexed: dict[str, int]
    """file_index rows of the JSON files by status."""


@dataclass(frozen=True, slots=True)
class SqliteSourceStatus:
    """One OpenCode SQLite store found now (probed read-only), and what the index holds of it."""

    path: str
    prefix: str
    state: str
    message: str
    rows: dict[str, int]
    """Rows per SQLite table, counted by the probe (empty unless the state is ok)."""
    indexed: dict[str, int]
    watermarks: dict[str, int]
    """The committed time_updated (ms) per SQLite table."""
    described: Mapping[str, object]
    """Everything the source says of itself (its describe()), shown whole by --json."""

    def as_json(self) -> dict[str, object]:
        return {**self.described, "watermarks": self.watermarks, "indexed": self.indexed}

    def lines(self) -> list[str]:
        generation = {
            "1.x": "OpenCode 1.x",
            "2.x": "OpenCode 2.x",
            "upgraded": "OpenCode 2.x upgraded from 1.x",
        }.get(str(self.described.get("generation", "")), "")
        what = (
            f"{self.state}, {generation + ', ' if generation else ''}"
            f"{sum(self.rows.values())} records"
            if self.state == "ok"
            else self.state
        )
        lines = [
            f"source sqlite   {self.path}: {what}; {_counts(self.indexed)} (keys {self.prefix}…)"
        ]
        if self.message:
            lines.append(f"                {self.message}")
        return lines


@dataclass(frozen=True, slots=True)
class TreeSourceStatus:
    """One legacy `project/<id>/storage` tree found now (listed), and what the index holds of it."""

    path: str
    prefix: str
    state: str
    files: dict[str, int]
    """Files per kind, counted by the listing."""
    indexed: dict[str, int]
    described: Mapping[str, object]

    def as_json(self) -> dict[str, object]:
        return {**self.described, "indexed": self.indexed}

    def lines(self) -> list[str]:
        what = (
            f"{self.state}, {sum(self.files.values())} files" if self.state == "ok" else self.state
        )
        return [
            f"source tree     {self.path}: {what}; {_counts(self.indexed)} (keys {self.prefix}…)"
        ]


@dataclass(frozen=True, slots=True)
class SourcesStatus:
    json_files: JsonSourceStatus
    sqlite: tuple[SqliteSourceStatus, ...]
    other_indexed: dict[str, dict[str, int]]
    """file_index rows (by status) of sources not found now, by key prefix."""
    trees: tuple[TreeSourceStatus, ...] = ()
    v1_note: str = V1_NOTE

    def as_json(self) -> dict[str, object]:
        return {
            "json": asdict(self.json_files),
            "sqlite": [s.as_json() for s in self.sqlite],
            "trees": [t.as_json() for t in self.trees],
            "other_indexed": self.other_indexed,
            "v1_note": self.v1_note,
        }

    def lines(self) -> list[str]:
        files = self.json_files
        lines = [f"source json     {files.root}: {_counts(files.indexed)}"]
        for found in self.sqlite:
            lines += found.lines()
        if not self.sqlite:
            lines.append(
                "source sqlite   none found (--opencode-db, $OPENCODE_DB, opencode*.db beside the "
                "storage folder)"
            )
        for tree in self.trees:
            lines += tree.lines()
        for ns, statuses in self.other_indexed.items():
            lines.append(f"indexed earlier {ns} (not found now): {_counts(statuses)}")
        lines.append(f"note            {self.v1_note}")
        return lines


@dataclass(frozen=True, slots=True)
class StatusReport:
    db_path: str
    counts: IndexCounts
    choice: Choice
    """The indexer a start would run now, and why."""
    versions: Comparison | None
    """Each version's figures; None for a database without batch_log."""
    sources: SourcesStatus

    def as_json(self) -> dict[str, object]:
        versions = (self.versions.v1, self.versions.v2) if self.versions else ()
        return {
            "schema_version": self.counts.schema_version,
            "file_index": self.counts.file_index,
            "tables": self.counts.tables,
            "active": self.choice.version,
            "why": self.choice.reason,
            "rollout_percent": self.choice.rollout_percent,
            "versions": {
                v.version: {
                    "files_per_s": round(v.files_per_s, 1),
                    "files": v.files,
                    "batches": v.batches,
                    "errors": v.errors,
                    "reconciler_catches": v.reconciler_catches,
                    "processing_ms": asdict(v.processing_ms),
                    "event_latency_ms": asdict(v.event_latency_ms),
                }
                for v in versions
            },
            "sources": self.sources.as_json(),
        }

    def lines(self) -> list[str]:
        counts = self.counts
        return [
            f"database        {self.db_path} (schema {counts.schema_version})",
            f"indexer         {self.choice.version}: {self.choice.reason}",
            "file_index      " + ", ".join(f"{k} {v}" for k, v in counts.file_index.items()),
            "tables          " + ", ".join(f"{k} {v}" for k, v in counts.tables.items()),
            *self.sources.lines(),
        ]


def status_report(
    conn: duckdb.DuckDBPyConnection,
    db_path: Path,
    choice: Choice,
    window_s: float,
    databases: Sequence[Path],
    storage_root: Path,
) -> StatusReport:
    """Read everything `ocindex status` shows; tables a legacy database lacks count as 0."""
    has_log = "batch_log" in existing_tables(conn)
    return StatusReport(
        db_path=str(db_path),
        counts=index_counts(conn),
        choice=choice,
        versions=compare(conn, window_s) if has_log else None,
        sources=sources_status(conn, databases, storage_root),
    )


def sources_status(
    conn: duckdb.DuckDBPyConnection | None, databases: Sequence[Path], storage_root: Path
) -> SourcesStatus:
    """Each database and legacy tree found (probed read-only now), and what file_index holds
    per source."""
    indexed = indexed_by_source(conn) if conn is not None else {}
    marks = source_watermarks(conn) if conn is not None else {}
    found = []
    for source in make_sources(databases, storage_root):
        info = source.probe()
        found.append(
            SqliteSourceStatus(
                path=str(info["path"]),
                prefix=source.prefix,
                state=str(info["state"]),
                message=str(info.get("message") or ""),
                rows=_int_map(info.get("rows")),
                indexed=indexed.get(source.prefix, {}),
                watermarks=marks.get(source.prefix, {}),
                described=info,
            )
        )
    trees = []
    for tree in make_tree_sources(discover_legacy_trees(storage_root)):
        info = tree.probe()
        trees.append(
            TreeSourceStatus(
                path=str(info["path"]),
                prefix=tree.prefix,
                state=str(info["state"]),
                files=_int_map(info.get("files")),
                indexed=indexed.get(tree.prefix, {}),
                described=info,
            )
        )
    known = {s.prefix for s in found} | {t.prefix for t in trees}
    return SourcesStatus(
        json_files=JsonSourceStatus(str(storage_root), indexed.get(JSON_NAMESPACE, {})),
        sqlite=tuple(found),
        other_indexed={
            ns: c for ns, c in indexed.items() if ns != JSON_NAMESPACE and ns not in known
        },
        trees=tuple(trees),
    )


def _int_map(value: object) -> dict[str, int]:
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _counts(statuses: Mapping[str, int]) -> str:
    main = statuses.get("indexed", 0)
    rest = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s != "indexed" and n)
    return f"{main} indexed" + (f" ({rest})" if rest else "")
