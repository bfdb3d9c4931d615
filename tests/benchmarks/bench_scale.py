"""Scale check, not run in CI: a tree of N files (default 1,000,000), its initial index with
`ocindex index`, then a reconcile of the unchanged tree, with peak RSS of each step and the
share of the reconcile spent walking the tree (listing + lstat into Arrow columns).

    .venv/bin/python tests/benchmarks/bench_scale.py [--files 1000000] [--per-folder 4]
        [--dir /dev/shm/ocindex-scale-4] [--keep-index] [--walk-threads N]

The tree is generated once (small part files, --per-folder of them in each message's folder, as
OpenCode lays them out: 3.5-4 a message in the real stores of ../shared/corpus/real and in the
simulator's trees, so 250,000 folders for a million files) and reused; the database is rebuilt each run, unless --keep-index finds one to reconcile against.
The reconcile is timed 3 times on one core and 3 times with its walk shared by N threads
(one per core, at least 2), alternated.
Old and new code side by side: alternate runs with PYTHONPATH set to each checkout (without it,
the code run is this script's checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import orjson

CHECKOUT = Path(__file__).resolve().parents[2]


PER_FOLDER = 4
"""Part files a message folder, as OpenCode lays them out (3.5-4 in the real stores)."""


def names(i: int, per_folder: int = PER_FOLDER) -> tuple[str, str]:
    """The message folder and the part id of the tree's i-th file (part/{folder}/{id}.json)."""
    return f"msg_{i // per_folder:07d}", f"prt_{i:09d}"


def default_dir(per_folder: int) -> Path:
    """Where a tree of this layout is kept unless --dir says otherwise: one folder a layout."""
    return Path(f"/dev/shm/ocindex-scale-{per_folder}")


def generate(root: Path, files: int, per_folder: int = PER_FOLDER) -> None:
    marker = root.parent / f".complete-{files}-{per_folder}"
    if marker.exists():
        return
    if root.exists():
        raise SystemExit(f"{root} holds another tree: give another --dir")
    t0 = time.perf_counter()
    for i in range(files):
        message, part = names(i, per_folder)
        folder = root / "part" / message
        if i % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "id": part,
            "sessionID": f"ses_{i // 2000:05d}",
            "messageID": folder.name,
            "type": "text",
            "text": f"part {i}",
            "time": {"start": 1_767_225_600_000 + i},
        }
        (folder / f"{part}.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    marker.touch()
    print(f"generated {files:,} files in {time.perf_counter() - t0:.0f}s", file=sys.stderr)


def code_env() -> dict[str, str]:
    """The environment that runs $PYTHONPATH's code if set, else this checkout's (not the
    current folder's: runs of two checkouts side by side must each run their own)."""
    return {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(CHECKOUT)}


def timed(command: list[str]) -> tuple[float, float, str]:
    """Run a command; return its seconds, its peak RSS in MB and its stdout."""
    t0 = time.perf_counter()
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, env=code_env(), cwd="/"
    )
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, rss_mb, out.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument(
        "--per-folder", type=int, default=PER_FOLDER, help="part files a message folder"
    )
    parser.add_argument("--dir", type=Path, help="default: /dev/shm/ocindex-scale-PER_FOLDER")
    parser.add_argument(
        "--keep-index", action="store_true", help="reuse the database of an earlier run"
    )
    parser.add_argument(
        "--walk-threads",
        type=int,
        default=max(2, len(os.sched_getaffinity(0))),
        help="the reconcile is also timed with its walk shared by this many threads",
    )
    args = parser.parse_args()
    if args.per_folder < 1:
        parser.error("--per-folder must be 1 or more")
    root = (args.dir or default_dir(args.per_folder)).resolve() / "storage"
    generate(root, args.files, args.per_folder)
    db = root.parent / "index.duckdb"
    index: dict[str, object] = {}
    if not (args.keep_index and db.exists()):
        for p in (db, db.with_name(db.name + ".wal")):
            p.unlink(missing_ok=True)
        cli = [sys.executable, "-m", "indexer"]
        index_s, index_rss, out = timed(
            [*cli, "index", "--storage", str(root), "--db", str(db), "--indexer", "v2", "--json"]
        )
        index = {
            "index_seconds": round(index_s, 1),
            "index_files_per_s": round(args.files / index_s),
            "index_peak_rss_mb": round(index_rss),
            "indexed": json.loads(out)["indexed"],
        }
    script = (
        "import sys, time, resource\n"
        "from pathlib import Path\n"
        "from indexer.store.database import open_database\n"
        "from indexer.pipeline.reconciler import Reconciler, ReconcilerConfig, disk_table\n"
        "from indexer.scan import walk_columns as walk\n"
        "conn = open_database(sys.argv[1])\n"
        "def reconciler(processes):\n"
        "    try:\n"
        "        config = ReconcilerConfig(walk_threads=processes)\n"
        "    except TypeError:  # code of the walk shared with processes, side by side\n"
        "        config = ReconcilerConfig(walk_processes=processes)\n"
        "    return Reconciler(Path(sys.argv[2]), conn.cursor, lambda k, t: None, set, config)\n"
        "recs = {p: reconciler(p) for p in (1, int(sys.argv[3]))}\n"
        "runs = {p: [] for p in recs}\n"
        "for _ in range(3):  # alternated: the machine's noise falls on both\n"
        "    for p, rec in recs.items():\n"
        "        t0 = time.perf_counter(); r = rec.scan_now()\n"
        "        runs[p].append(time.perf_counter() - t0)\n"
        "        assert r.findings == 0, r.findings\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "walks = []\n"
        "for _ in range(3):\n"
        "    t0 = time.perf_counter(); disk_table(walk(Path(sys.argv[2]), links=True))\n"
        "    walks.append(time.perf_counter() - t0)\n"
        "print(' '.join(f'{s:.3f}' for p in recs for s in runs[p]), sorted(walks)[1], rss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db), str(root), str(args.walk_threads)],
        capture_output=True,
        text=True,
        env=code_env(),
        cwd="/",
    )
    if done.returncode != 0:
        sys.exit(done.stderr)
    *both, walk_s, reconcile_rss = (float(x) for x in done.stdout.split())
    runs, shared = both[:3], both[3:]
    result = {
        "files": args.files,
        **index,
        "reconcile_seconds": sorted(runs)[1],
        "reconcile_runs": runs,
        f"reconcile_seconds_walk_threads_{args.walk_threads}": sorted(shared)[1],
        f"reconcile_runs_walk_threads_{args.walk_threads}": shared,
        "reconcile_walk_seconds": round(walk_s, 3),
        "reconcile_peak_rss_mb": round(reconcile_rss),
        "db_mb": round(db.stat().st_size / 1e6),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
