"""`ocindex search` on a simulated OpenCode 2.x store indexed by `ocindex index`: its hits in
prompts, answers and reasoning equal an independent count over the store in plain SQL, each
record once (the fork's copies left out)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from indexer.simulate import SqliteSimulator
from tests.faults.support import run_cli
from tests.support.recount import _FORK_COPY

PHRASE = "error path"

# Rows with their own text (user, synthetic, …) and the text and reasoning items of assistant
# rows' content, of rows that are not a fork's copy.
STORE_COUNT = f"""
SELECT
  (SELECT count(*) FROM session_message m
   WHERE lower(json_extract(m.data, '$.text')) LIKE '%{PHRASE}%' AND NOT {_FORK_COPY}),
  (SELECT count(*) FROM session_message m, json_each(m.data, '$.content') c
   WHERE json_extract(c.value, '$.type') IN ('text', 'reasoning')
     AND lower(json_extract(c.value, '$.text')) LIKE '%{PHRASE}%' AND NOT {_FORK_COPY}),
  (SELECT count(*) FROM session_message m WHERE {_FORK_COPY})
"""


def test_search_hits_equal_the_store_count_of_the_phrase_each_record_once(
    tmp_path: Path,
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    sim = SqliteSimulator(root, seed=5, generation="2.x")
    sim.write_sessions(8)
    sim.close()
    assert run_cli("index", "--storage", root, "--db", db).returncode == 0
    store = sqlite3.connect(f"file:{sim.db_path}?mode=ro", uri=True)
    try:
        row = store.execute(STORE_COUNT).fetchone()
    finally:
        store.close()
    own_text, items, copies = row
    assert own_text > 0 and items > 0 and copies > 0, "the store exercises every case"
    done = run_cli("search", PHRASE.upper(), "--db", db, "--json", "--limit", "100000")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    kinds = [h["kind"] for h in report["hits"]]
    assert kinds.count("message") == own_text
    assert kinds.count("text") + kinds.count("reasoning") == items
    assert report["total"] == len(kinds)
    assert all(PHRASE in h["match"].lower() for h in report["hits"])
    miss = run_cli("search", "no such phrase anywhere", "--db", db)
    assert miss.returncode == 0 and miss.stdout.startswith("no match for")
