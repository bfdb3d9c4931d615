"""`ocindex export --parquet DIR`: the data tables as Parquet partitioned by day (hive style),
incremental by partition fingerprints, each file replaced atomically. Never writes the index: it
reads through the live process's socket, or the file opened read-only (indexer.live).

What the export holds is recorded in DIR/_ocindex_export.json, partition by partition: the rows,
XOR and sum of DuckDB's hash of every row. One grouped query per table computes the same figures
on the index; a partition is rewritten only where they differ (a row added, changed in place or
deleted) or its file is missing, and removed where its day has no rows left. The recorded figures
are those of the rows written, so an index that changes during an export is caught next time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from indexer.kinds import DATA_TABLES, Table
from indexer.live.reading import Reader, reading

log = logging.getLogger(__name__)

STATE_NAME = "_ocindex_export.json"
"""Engines skip names starting with `_` or `.` when they read a folder of Parquet files."""
LOCK_NAME = ".ocindex_export.lock"
FILE_NAME = "part-0.parquet"
NULL_DAY = "__HIVE_DEFAULT_PARTITION__"
"""The partition of rows without a day: the name DuckDB and Spark write and read as NULL."""
WHOLE = ""
"""The partition key of a table exported without days."""
STATE_FORMAT = 1
HASH = "__ocindex_row_hash"
DAY = "__ocindex_day"
GROUP_ROWS = 200_000
"""Changed partitions are read in groups of about this many rows: few queries, bounded memory."""
DEFAULT_TIMEOUT_S = 600.0

DAYS: dict[str, tuple[str, str]] = {
    "sessions": ("t.time_created", ""),
    "messages": ("t.time_created", ""),
    "parts": ("m.time_created", "LEFT JOIN messages m ON m.id = t.message_id"),
    "todos": ("s.time_created", "LEFT JOIN sessions s ON s.id = t.session_id"),
    "session_diffs": ("s.time_created", "LEFT JOIN sessions s ON s.id = t.session_id"),
}
"""Each table's day (UTC) on alias t, and the join it needs: a message's own, a part's message's,
a todo's or diff's session's. Projects, a small table of things rather than events, and any
table missing here are exported whole."""


class ExportError(Exception):
    """The export cannot run or finish; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class TableExport:
    name: str
    partitions: int
    written: int
    deleted: int
    unchanged: int
    rows_written: int


@dataclass(frozen=True, slots=True)
class ExportReport:
    directory: Path
    live_pid: int | None
    """The ocindex process that answered, or None when the file was read directly."""
    tables: tuple[TableExport, ...]
    seconds: float

    @property
    def files_written(self) -> int:
        return sum(t.written for t in self.tables)

    @property
    def files_deleted(self) -> int:
        return sum(t.deleted for t in self.tables)

    @property
    def files_unchanged(self) -> int:
        return sum(t.unchanged for t in self.tables)

    @property
    def rows_written(self) -> int:
        return sum(t.rows_written for t in self.tables)

    def as_json(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "live_pid": self.live_pid,
            "files_written": self.files_written,
            "files_deleted": self.files_deleted,
            "files_unchanged": self.files_unchanged,
            "rows_written": self.rows_written,
            "seconds": round(self.seconds, 3),
            "tables": {
                t.name: {k: v for k, v in asdict(t).items() if k != "name"} for t in self.tables
            },
        }


@dataclass(slots=True)
class _TableState:
    columns: list[str] = field(default_factory=list)
    partitions: dict[str, str] = field(default_factory=dict)
    """Partition key (a day, NULL_DAY or WHOLE) → fingerprint of the rows in its file."""


def export_parquet(
    db: Path | str, directory: Path | str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ExportReport:
    """Bring the Parquet export in `directory` up to date with the index at `db`. Raises
    ExportError, indexer.live.readonly.QueryError (the index cannot be read) or OSError."""
    out = Path(directory)
    started = time.monotonic()
    with reading(Path(db), timeout_s) as reader:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create {out}: {exc.strerror}") from None
        with _locked(out):
            _sweep_temporaries(out)
            state = load_state(out)
            columns = _columns(reader)
            done = []
            for table in DATA_TABLES:
                done.append(_export_table(reader, out, table, columns.get(table.name, []), state))
                save_state(out, state)
            return ExportReport(out, reader.live_pid, tuple(done), time.monotonic() - started)


# --- one table ---------------------------------------------------------------------------------


def _export_table(
    reader: Reader,
    out: Path,
    table: Table,
    columns: list[str],
    state: dict[str, _TableState],
) -> TableExport:
    previous = state.get(table.name, _TableState())
    known = previous.partitions if previous.columns == columns else {}
    current = _fingerprints(reader, table) if columns else {}
    on_disk = _partitions_on_disk(out / table.name)
    stale = sorted(k for k in current if known.get(k) != current[k] or k not in on_disk)
    gone = sorted((on_disk | set(known)) - set(current))
    kept = {k: known[k] for k in current if k not in stale}
    now = _TableState(columns, kept)
    state[table.name] = now
    written = rows = 0
    for group in _groups(stale, current):
        for key, part in _read_partitions(reader, table, group).items():
            if part.num_rows == 0:
                gone.append(key)  # its rows left between the two queries
                continue
            write_partition(part.drop_columns([HASH]), _file_of(out / table.name, key))
            now.partitions[key] = fingerprint_of(part.column(HASH))
            written += 1
            rows += part.num_rows
    for key in gone:
        _remove(_file_of(out / table.name, key))
        now.partitions.pop(key, None)
    return TableExport(
        table.name, len(now.partitions), written, len(gone), len(current) - len(stale), rows
    )


def _columns(reader: Reader) -> dict[str, list[str]]:
    names = ", ".join(f"'{t.name}'" for t in DATA_TABLES)
    found = reader.read(
        "SELECT table_name AS name, "
        "list(column_name || ' ' || data_type ORDER BY ordinal_position) AS columns "
        "FROM information_schema.columns "
        f"WHERE table_schema = 'main' AND table_name IN ({names}) GROUP BY ALL"
    )
    return {str(r["name"]): [str(c) for c in r["columns"]] for r in found.to_pylist()}


def _day_sql(table: Table) -> tuple[str, str]:
    day, join = DAYS.get(table.name, ("NULL", ""))
    return f"CAST({day} AS DATE)", join


def _fingerprints(reader: Reader, table: Table) -> dict[str, str]:
    """Partition key → fingerprint of its rows in the index, in one grouped scan."""
    day, join = _day_sql(table)
    found = reader.read(
        f"SELECT {day}::VARCHAR AS day, count(*) AS n, bit_xor(hash(t))::VARCHAR AS x, "
        f"sum(hash(t)::HUGEINT)::VARCHAR AS s FROM {table.name} t {join} GROUP BY ALL"
    )
    return {_key(table, r["day"]): f"{r['n']}:{r['x']}:{r['s']}" for r in found.to_pylist()}


def fingerprint_of(hashes: pa.ChunkedArray | pa.Array) -> str:
    """The fingerprint _fingerprints computes, of rows already read: count, XOR and sum."""
    values = [int(v) for v in hashes.to_pylist()]
    xor = 0
    for v in values:
        xor ^= v
    return f"{len(values)}:{xor}:{sum(values)}"


def _key(table: Table, day: Any) -> str:
    if table.name not in DAYS:
        return WHOLE
    return NULL_DAY if day is None else str(day)


def _groups(keys: list[str], current: dict[str, str]) -> Iterator[list[str]]:
    group: list[str] = []
    rows = 0
    for key in keys:
        group.append(key)
        rows += int(current[key].split(":", 1)[0])
        if rows >= GROUP_ROWS:
            yield group
            group, rows = [], 0
    if group:
        yield group


def _read_partitions(reader: Reader, table: Table, keys: list[str]) -> dict[str, pa.Table]:
    """The rows of these partitions, each sorted by primary key, with their row hashes."""
    day, join = _day_sql(table)
    where = []
    days = [k for k in keys if k not in (WHOLE, NULL_DAY)]
    if days:
        where.append(f"{day} IN ({', '.join(_date_literal(d) for d in days)})")
    if NULL_DAY in keys:
        where.append(f"{day} IS NULL")
    condition = f"WHERE {' OR '.join(where)}" if where else ""
    order = ", ".join(f"t.{c}" for c in table.primary_key)
    found = reader.read(
        f"SELECT t.*, hash(t) AS {HASH}, {day}::VARCHAR AS {DAY} FROM {table.name} t {join} "
        f"{condition} ORDER BY {DAY}, {order}"
    )
    parts: dict[str, pa.Table] = {}
    labels = found.column(DAY)
    rows = found.drop_columns([DAY])
    for key in keys:
        if key == WHOLE:
            parts[key] = rows
        elif key == NULL_DAY:
            parts[key] = rows.filter(pc.is_null(labels))
        else:
            parts[key] = rows.filter(pc.fill_null(pc.equal(labels, key), False))
    return parts


def _date_literal(day: str) -> str:
    return f"DATE '{dt.date.fromisoformat(day).isoformat()}'"


# --- files -------------------------------------------------------------------------------------


def _file_of(table_dir: Path, key: str) -> Path:
    return table_dir / FILE_NAME if key == WHOLE else table_dir / f"day={key}" / FILE_NAME


def _partitions_on_disk(table_dir: Path) -> set[str]:
    found = {WHOLE} if (table_dir / FILE_NAME).is_file() else set()
    found.update(p.parent.name[len("day=") :] for p in table_dir.glob(f"day=*/{FILE_NAME}"))
    return found


def write_partition(rows: pa.Table, path: Path) -> None:
    """Write `rows` to `path` atomically: a hidden temporary name in the same folder (which no
    reader's `*.parquet` matches), flushed to disk, then renamed over the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as sink:
            encode(rows, sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def encode(rows: pa.Table, sink: IO[bytes]) -> None:
    pq.write_table(rows, sink, compression="zstd")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.parent.name.startswith("day="):
        with contextlib.suppress(OSError):  # not empty: someone else's file is there
            path.parent.rmdir()


def _sweep_temporaries(out: Path) -> None:
    """Remove what an export killed mid-write left: hidden temporaries, never a visible file."""
    for table in DATA_TABLES:
        for leftover in (out / table.name).glob(f"**/.{FILE_NAME}.*.tmp"):
            leftover.unlink(missing_ok=True)
    for leftover in out.glob(f".{STATE_NAME}.*.tmp"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One export at a time per folder (a cron job that overlaps the previous run waits not)."""
    with open(out / LOCK_NAME, "a+b") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExportError(f"another export to {out} is running") from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


# --- the state file ----------------------------------------------------------------------------


def load_state(out: Path) -> dict[str, _TableState]:
    """What the last export wrote; nothing when there is no state or it cannot be read (then
    every partition is written again)."""
    path = out / STATE_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != STATE_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}")
        return {
            str(name): _TableState(
                [str(c) for c in t["columns"]],
                {str(k): str(v) for k, v in t["partitions"].items()},
            )
            for name, t in raw["tables"].items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring %s (%s): every partition is written again", path, exc)
        return {}


def save_state(out: Path, state: dict[str, _TableState]) -> None:
    """Record `state`, unless it is what the file holds: an export that changed nothing leaves
    every file of the folder untouched, its own included."""
    tables = {
        name: {"columns": t.columns, "partitions": dict(sorted(t.partitions.items()))}
        for name, t in state.items()
    }
    path = out / STATE_NAME
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text(encoding="utf-8")).get("tables") == tables:
            return
    changed_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document = {"format": STATE_FORMAT, "changed_at": changed_at, "tables": tables}
    temporary = path.with_name(f".{STATE_NAME}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
