"""Older OpenCode's `<data dir>/project/<id>/storage` JSON trees indexed by v2 as sources beside the
storage root: their records land with the right ids under their own key prefix, the reconciler
picks up a changed or deleted file, a file that is no record is skipped, `ocindex status` lists
each tree, and the real corpus's legacy tree (when present) indexes its messages."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import orjson
import pytest

from indexer import engine as engine_module
from indexer.cli import main as cli_main
from indexer.config import Flags, IndexerConfig
from indexer.pipeline.reconciler import ReconcilerConfig
from indexer.pipeline.v2 import UnifiedIndexerV2, V2Config
from indexer.sources.tree import discover_legacy_trees, make_tree_sources
from tests.conftest import CORPUS
from tests.helpers import wait_until, write

LEGACY = CORPUS / "theoneand33__.local-opencode"

SESSION = "ses_legacy1"
MESSAGE = "msg_legacy1"
PART = "prt_legacy1"


def write_legacy_session(tree: Path) -> None:
    """One session, message and part in the layout OpenCode 0.x kept under project/<id>/storage."""
    session = {
        "id": SESSION,
        "version": "0.5.1",
        "title": "old",
        "time": {"created": 1, "updated": 2},
    }
    message = {
        "id": MESSAGE,
        "sessionID": SESSION,
        "role": "assistant",
        "time": {"created": 3, "completed": 4},
        "tokens": {"input": 7, "output": 200, "reasoning": 0, "cache": {"write": 0, "read": 0}},
    }
    part = {"id": PART, "messageID": MESSAGE, "sessionID": SESSION, "type": "text", "text": "hi"}
    write(tree, f"session/info/{SESSION}.json", orjson.dumps(session))
    write(tree, f"session/message/{SESSION}/{MESSAGE}.json", orjson.dumps(message))
    write(tree, f"session/part/{SESSION}/{MESSAGE}/{PART}.json", orjson.dumps(part))


def v2_on(root: Path, db: Path, interval_s: float = 3600.0) -> UnifiedIndexerV2:
    config = V2Config(reconciler=ReconcilerConfig(interval_s=interval_s), watch=False)
    sources = make_tree_sources(discover_legacy_trees(root))
    return UnifiedIndexerV2(root, db, config=config, sources=sources)


def status_of(cursor: duckdb.DuckDBPyConnection, path: str) -> str | None:
    row = cursor.execute("SELECT status FROM file_index WHERE file_path = ?", [path]).fetchone()
    return None if row is None else str(row[0])


def test_a_legacy_tree_beside_the_storage_root_is_indexed_by_v2_with_its_ids(
    tmp_path: Path,
) -> None:
    root, tree = tmp_path / "storage", tmp_path / "project" / "p1" / "storage"
    root.mkdir()
    write_legacy_session(tree)
    v2 = v2_on(root, tmp_path / "index.duckdb")
    v2.start()
    try:
        assert [s.prefix for s in v2.sources] == ["legacy:p1:"]
        assert v2.wait_idle(20, settle_s=0.2)
        cursor = v2.cursor()
        sessions = cursor.execute("SELECT id, project_id, title FROM sessions").fetchall()
        assert sessions == [(SESSION, "p1", "old")]  # the tree's folder names the project
        messages = cursor.execute("SELECT id, session_id, role, tokens_output FROM messages")
        assert messages.fetchall() == [(MESSAGE, SESSION, "assistant", 200)]
        parts = cursor.execute("SELECT id, message_id, session_id, type FROM parts").fetchall()
        assert parts == [(PART, MESSAGE, SESSION, "text")]
        paths = cursor.execute("SELECT file_path, status FROM file_index ORDER BY 1").fetchall()
        assert paths == [
            (f"legacy:p1:session/info/{SESSION}.json", "indexed"),
            (f"legacy:p1:session/message/{SESSION}/{MESSAGE}.json", "indexed"),
            (f"legacy:p1:session/part/{SESSION}/{MESSAGE}/{PART}.json", "indexed"),
        ]
    finally:
        v2.stop()


def test_the_periodic_reconciler_picks_up_a_changed_and_a_deleted_file_of_a_legacy_tree(
    tmp_path: Path,
) -> None:
    root, tree = tmp_path / "storage", tmp_path / "project" / "p1" / "storage"
    root.mkdir()
    write_legacy_session(tree)
    v2 = v2_on(root, tmp_path / "index.duckdb", interval_s=0.2)
    v2.start()
    try:
        assert v2.wait_idle(20, settle_s=0.2)
        cursor = v2.cursor()
        message = tree / f"session/message/{SESSION}/{MESSAGE}.json"
        doc = json.loads(message.read_bytes())
        doc["tokens"]["output"] = 12345
        message.write_bytes(orjson.dumps(doc))
        (tree / f"session/part/{SESSION}/{MESSAGE}/{PART}.json").unlink()

        def caught_up() -> bool:
            tokens = cursor.execute("SELECT tokens_output FROM messages").fetchall()
            parts = cursor.execute("SELECT count(*) FROM parts").fetchone()
            return tokens == [(12345,)] and parts == (0,)

        assert wait_until(caught_up, timeout_s=20)
        part_key = f"legacy:p1:session/part/{SESSION}/{MESSAGE}/{PART}.json"
        assert status_of(cursor, part_key) == "deleted"
        assert cursor.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
    finally:
        v2.stop()


def test_a_file_of_a_legacy_tree_that_is_no_record_is_skipped(tmp_path: Path) -> None:
    root, tree = tmp_path / "storage", tmp_path / "project" / "p1" / "storage"
    root.mkdir()
    write_legacy_session(tree)
    write(tree, f"session/share/{SESSION}.json", b'{"secret": "s", "url": "https://example"}')
    write(tree, "notes.txt", b"not json")
    v2 = v2_on(root, tmp_path / "index.duckdb")
    v2.start()
    try:
        assert v2.wait_idle(20, settle_s=0.2)
        cursor = v2.cursor()
        assert status_of(cursor, f"legacy:p1:session/share/{SESSION}.json") == "skipped"
        assert status_of(cursor, "legacy:p1:notes.txt") == "skipped"
        assert cursor.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
    finally:
        v2.stop()


def test_assemble_and_status_list_each_legacy_tree_beside_the_storage_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, db = tmp_path / "storage", tmp_path / "index.duckdb"
    root.mkdir()
    write_legacy_session(tmp_path / "project" / "p1" / "storage")
    write_legacy_session(tmp_path / "project" / "global" / "storage")
    config = IndexerConfig.load(Flags(storage=root, db=db, indexer="v2"), {})
    engine = engine_module.assemble(config, watch=False)
    try:
        described = [s.describe() for s in engine.sources]
        assert [(d["kind"], d["prefix"]) for d in described] == [
            ("tree", "legacy:global:"),
            ("tree", "legacy:p1:"),
        ]
    finally:
        engine.writer.close()
    assert cli_main(["index", "--storage", str(root), "--db", str(db), "--indexer", "v2"]) == 0
    capsys.readouterr()
    assert cli_main(["status", "--storage", str(root), "--db", str(db), "--json"]) == 0
    trees = json.loads(capsys.readouterr().out)["sources"]["trees"]
    assert [(t["prefix"], t["state"], t["indexed"]["indexed"]) for t in trees] == [
        ("legacy:global:", "ok", 3),
        ("legacy:p1:", "ok", 3),
    ]
    assert trees[1]["files"] == {"message": 1, "part": 1, "session": 1}
    assert cli_main(["status", "--storage", str(root), "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert f"source tree     {tmp_path / 'project' / 'p1' / 'storage'}: ok, 3 files" in text
    assert "indexed earlier" not in text


@pytest.mark.skipif(not LEGACY.is_dir(), reason="the real corpus is not present")
def test_the_real_legacy_tree_indexes_its_messages(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(LEGACY, data)  # never write into the shared corpus
    for folder, _, _ in os.walk(data):
        os.chmod(folder, 0o755)  # the copy keeps the corpus's read-only folders
    tree = LEGACY / "project" / "global" / "storage"
    on_disk = {p.stem for p in (tree / "session" / "message").glob("*/*.json")}
    v2 = v2_on(data / "storage", tmp_path / "index.duckdb")
    v2.start()
    try:
        assert v2.wait_idle(30, settle_s=0.2)
        cursor = v2.cursor()
        indexed = cursor.execute(
            "SELECT count(*) FROM file_index "
            "WHERE file_path LIKE 'legacy:global:session/message/%' AND status = 'indexed'"
        ).fetchone()
        assert indexed == (len(on_disk),) and len(on_disk) > 0
        ids = {row[0] for row in cursor.execute("SELECT id FROM messages").fetchall()}
        assert on_disk <= ids
        problems = cursor.execute(
            "SELECT file_path, status FROM file_index "
            "WHERE file_path LIKE 'legacy:%' AND status != 'indexed'"
        ).fetchall()
        assert problems == []
    finally:
        v2.stop()
