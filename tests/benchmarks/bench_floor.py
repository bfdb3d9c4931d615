"""What the machine allows a catch-up, not run in CI: bench_scale's uniform tree indexed by
`ocindex index`, beside the floors under it, all in one run:

- db: DuckDB alone taking the tree's rows the way the writer does: per batch of --batch files,
  one transaction with the data rows' insert, the file_index insert and one batch_log row, and
  a checkpoint once the WAL passes the writer's bound. The rows are built by the real worker
  code (read_task) from the first batch of files, given fresh keys for each batch outside the
  clock: only DuckDB's statements are timed.
- read: read_task alone on one core, no database: read, parse, build the Arrow rows.
- pipeline: the leanest catch-up this reader and this database allow, end to end: the walk
  (shared by threads), every path classified, read_task on one worker process per core, and one
  writer committing each batch's rows and file_index rows as in `db`, reading the next batch
  meanwhile; no accumulator, no per-file objects in the writing process, no batch_log. What
  no design of the pipeline on these parts could beat on this machine.

    .venv/bin/python tests/benchmarks/bench_floor.py [--files 1000000] [--batch 2000]
        [--read-files 100000] [--per-folder 4] [--dir /dev/shm/ocindex-scale-4] [--skip-index]
    .venv/bin/python tests/benchmarks/bench_floor.py --tree DIR   # the pipeline floor of any tree
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bench_scale  # beside this script: the uniform tree and the timed `ocindex index`
import pyarrow as pa
import pyarrow.compute as pc

from indexer.config import cores
from indexer.kinds import SPECS, FileKind, classify, to_wire
from indexer.parallel_walk import walk_parallel
from indexer.pipeline.read_pool import start_workers, stop_workers  # the pool's own
from indexer.pipeline.read_worker import read_task
from indexer.pipeline.reader import ProcessorConfig
from indexer.pipeline.reconciler import disk_table
from indexer.pipeline.writer import WAL_CHECKPOINT_BYTES
from indexer.store.database import open_database
from indexer.store.schema import migrate
from indexer.store.tracking import new_indexed_rows


def part_keys(first: int, count: int, per_folder: int) -> list[tuple[str, str, str, str]]:
    """bench_scale's files first .. first+count as the worker's wire keys."""
    out = []
    for i in range(first, first + count):
        message, part = bench_scale.names(i, per_folder)
        out.append((f"part/{message}/{part}.json", "part", part, message))
    return out


def read_floor(root: Path, files: int, per_folder: int) -> dict[str, float]:
    config = ProcessorConfig()
    t0 = time.perf_counter()
    for first in range(0, files, 500):  # the pool's task size
        outcomes, _ = read_task(
            str(root), part_keys(first, min(500, files - first), per_folder), config
        )
        assert all(o[0] == "indexed" for o in outcomes), outcomes[:3]
    seconds = time.perf_counter() - t0
    return {
        "read_files": files,
        "read_seconds": round(seconds, 2),
        "read_files_per_s_one_core": round(files / seconds),
    }


def db_floor(root: Path, files: int, batch: int, per_folder: int) -> dict[str, float]:
    keys = part_keys(0, batch, per_folder)
    outcomes, tables = read_task(str(root), keys, ProcessorConfig())
    parts = tables["part"]
    with tempfile.TemporaryDirectory(dir=root.parent) as scratch:
        db = Path(scratch) / "floor.duckdb"
        conn = open_database(db)
        migrate(conn)
        timed = checkpoints = 0.0
        for n, first in enumerate(range(0, files, batch)):
            size = min(batch, files - first)
            suffix = pa.scalar(f"-{n}")
            ids = pc.binary_join_element_wise(parts.column("id"), suffix, "")
            rows = parts.set_column(parts.schema.get_field_index("id"), "id", ids).slice(0, size)
            renamed = [(f"{k[0]}-{n}", k[1], f"{k[2]}-{n}", k[3]) for k in keys[:size]]
            tracked = file_index_rows(renamed, outcomes[:size])
            latencies = [1.0] * size
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            conn.from_arrow(rows).insert_into("parts")
            conn.from_arrow(tracked).insert_into("file_index")
            conn.execute(
                "INSERT INTO batch_log VALUES (?, 'v2', 'max_files', to_timestamp(?), "
                "to_timestamp(?), ?, ?, 0, 0, 0, 0, 0.0, 0.0, ?)",
                [n + 1, time.time(), time.time(), size, size, latencies],
            )
            conn.execute("COMMIT")
            t1 = time.perf_counter()
            wal = db.with_name(db.name + ".wal")
            if wal.exists() and wal.stat().st_size >= WAL_CHECKPOINT_BYTES:
                conn.execute("CHECKPOINT")
            t2 = time.perf_counter()
            timed += t2 - t0
            checkpoints += t2 - t1
        conn.close()
    return {
        "db_seconds": round(timed, 2),
        "db_checkpoint_seconds": round(checkpoints, 2),
        "db_files_per_s": round(files / timed),
        "batch_files": batch,
    }


def pipeline_floor(root: Path, batch: int) -> dict[str, float]:
    workers = start_workers(cores())
    for worker in workers:
        worker.hello()
    config = ProcessorConfig()
    with (
        tempfile.TemporaryDirectory(dir=root.parent) as scratch,
        ThreadPoolExecutor(len(workers)) as threads,
    ):
        db = Path(scratch) / "floor.duckdb"
        wal = db.with_name(db.name + ".wal")
        conn = open_database(db)
        migrate(conn)
        t0 = time.perf_counter()
        paths = disk_table(walk_parallel(root, False, 50_000, cores())).column("path")
        t1 = time.perf_counter()
        keys = [to_wire(k) for k in map(classify, paths.to_pylist()) if k is not None]
        t2 = time.perf_counter()

        def read(first: int) -> list[Future[list[Any]]]:
            share = -(-min(batch, len(keys) - first) // len(workers))
            starts = [first + i * share for i in range(len(workers))]
            return [
                threads.submit(w.run, [(str(root), keys[start : start + share], config)])
                for start, w in zip(starts, workers, strict=True)
            ]

        waited = writing = 0.0
        indexed = 0
        ahead = read(0)
        for first in range(0, len(keys), batch):
            t = time.perf_counter()
            answers = [a.result()[0] for a in ahead]
            waited += time.perf_counter() - t
            ahead = read(first + batch) if first + batch < len(keys) else []
            t = time.perf_counter()
            chunk = keys[first : first + batch]
            outcomes = [o for answer, _ in answers for o in answer]
            indexed += sum(o[0] == "indexed" for o in outcomes)
            conn.execute("BEGIN")
            for _, tables in answers:
                for kind, rows in tables.items():
                    conn.from_arrow(rows).insert_into(SPECS[FileKind(kind)].table.name)
            conn.from_arrow(file_index_rows(chunk, outcomes)).insert_into("file_index")
            conn.execute("COMMIT")
            if wal.exists() and wal.stat().st_size >= WAL_CHECKPOINT_BYTES:
                conn.execute("CHECKPOINT")
            writing += time.perf_counter() - t
        conn.execute("CHECKPOINT")
        seconds = time.perf_counter() - t0
        conn.close()
    stop_workers(workers)
    return {
        "pipeline_files": len(keys),
        "pipeline_indexed": indexed,
        "pipeline_seconds": round(seconds, 2),
        "pipeline_files_per_s": round(len(keys) / seconds),
        "pipeline_walk_seconds": round(t1 - t0, 2),
        "pipeline_classify_seconds": round(t2 - t1, 2),
        "pipeline_writer_busy_seconds": round(writing, 1),
        "pipeline_writer_waiting_seconds": round(waited, 1),
    }


def file_index_rows(keys: list[tuple[str, str, str, str]], outcomes: list[Any]) -> pa.Table:
    """The file_index rows the tracker writes for the files read cleanly for the first time
    (as a first catch-up in bulk does: the others would go the regular way)."""
    clean = [(k, o) for k, o in zip(keys, outcomes, strict=True) if o[0] == "indexed" and not o[4]]
    return new_indexed_rows(
        [k[0] for k, _ in clean],
        [k[1] for k, _ in clean],
        [k[2] for k, _ in clean],
        [o[1] for _, o in clean],
        [o[2] for _, o in clean],
        [o[3] for _, o in clean],
        "v2",
        int(time.time() * 1_000_000),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--read-files", type=int, default=100_000)
    parser.add_argument(
        "--per-folder", type=int, default=bench_scale.PER_FOLDER, help="bench_scale's layout"
    )
    parser.add_argument("--dir", type=Path, help="default: /dev/shm/ocindex-scale-PER_FOLDER")
    parser.add_argument("--skip-index", action="store_true", help="only the floors")
    parser.add_argument(
        "--tree", type=Path, help="only the pipeline floor, on this storage folder (any tree)"
    )
    args = parser.parse_args()
    if args.tree is not None:
        print(json.dumps(pipeline_floor(args.tree.resolve(), args.batch), indent=2))
        return 0
    root = (args.dir or bench_scale.default_dir(args.per_folder)).resolve() / "storage"
    bench_scale.generate(root, args.files, args.per_folder)
    result: dict[str, object] = {"files": args.files, "cores": len(os.sched_getaffinity(0))}
    if not args.skip_index:
        with tempfile.TemporaryDirectory(dir=root.parent) as scratch:
            db = str(Path(scratch) / "index.duckdb")
            cli = [sys.executable, "-m", "indexer", "index", "--indexer", "v2", "--json"]
            seconds, rss, _ = bench_scale.timed([*cli, "--storage", str(root), "--db", db])
        result |= {"index_seconds": round(seconds, 1), "index_peak_rss_mb": round(rss)}
    result |= db_floor(root, args.files, args.batch, args.per_folder)
    result |= read_floor(root, min(args.read_files, args.files), args.per_folder)
    result |= pipeline_floor(root, args.batch)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
