"""The simulator writes OpenCode-shaped files, deterministically, with the faults it reports;
the SQLite store plays the same story, and the demo writer stops cleanly."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from indexer.kinds import FileKind, classify
from indexer.simulate import (
    DemoWriter,
    OpenCodeSimulator,
    SimulationReport,
    Simulator,
    SqliteSimulator,
    SqliteWriter,
)
from tests.support.writes import WriteCount

ID_RE = re.compile(r"^(ses|msg|prt)_[0-9a-f]{12}[0-9A-Za-z]{14}$")
PROJECT_ID_RE = re.compile(r"^(global|[0-9a-f]{40})$")
MASK48 = (1 << 48) - 1
FAULT_KINDS = {"partial_then_completed", "corrupt", "empty", "invalid_utf8", "wrong_top_level"}


def disk_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def digests(root: Path) -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in disk_tree(root).items()}


def id_millis(record_id: str, descending: bool = False) -> int:
    """The millisecond clock in an id; 48 bits of ms * 4096 keep it modulo 2**36."""
    value = int(record_id.split("_", 1)[1][:12], 16)
    return ((~value & MASK48) if descending else value) >> 12


def wrapped(ms: int) -> int:
    return ms % (1 << 36)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll until the predicate holds or the deadline passes (no fixed sleeps as sync)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


# `ocindex simulate --sessions 200 --once --seed 7`, scaled down: every in-place rewrite truncates
# a file, which costs 0.1-0.3 ms on an ext4 disk, and 200 sessions make about 50,000 writes.
ONCE_SESSIONS = 20


class Once:
    """The library equivalent of `ocindex simulate --sessions N --once --seed 7`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sim = OpenCodeSimulator(root, seed=7)
        self.report: SimulationReport = self.sim.write_sessions(ONCE_SESSIONS)
        self.files = disk_tree(root)
        self.docs = {rel: orjson.loads(data) for rel, data in self.files.items()}

    def of_kind(self, kind: FileKind) -> dict[str, object]:
        return {rel: doc for rel, doc in self.docs.items() if _kind(rel) is kind}


def _kind(rel: str) -> FileKind:
    key = classify(rel)
    assert key is not None
    return key.kind


@pytest.fixture(scope="module")
def once(tmp_path_factory: pytest.TempPathFactory) -> Once:
    return Once(tmp_path_factory.mktemp("seed7"))


def test_once_mode_writes_the_mix_of_kinds_opencode_writes(once: Once) -> None:
    counts = Counter(_kind(rel) for rel in once.files)
    sessions, messages = counts[FileKind.SESSION], counts[FileKind.MESSAGE]
    assert sessions == ONCE_SESSIONS
    assert 12 <= messages / sessions <= 30
    assert 2.5 <= counts[FileKind.PART] / messages <= 6
    assert counts[FileKind.TODO] >= sessions // 5
    assert counts[FileKind.SESSION_DIFF] >= sessions // 5
    assert 2 <= counts[FileKind.PROJECT] <= 10
    assert counts[FileKind.SKIPPED] == 0


def test_every_file_is_pretty_json_of_the_right_top_level(once: Once) -> None:
    for rel, data in once.files.items():
        doc = once.docs[rel]
        assert isinstance(doc, list if _kind(rel).is_array else dict), rel
        # JSON.stringify(x, null, 2): two-space indent, no trailing newline.
        assert data == orjson.dumps(doc, option=orjson.OPT_INDENT_2), rel
        assert not data.endswith(b"\n")


def test_ids_and_paths_agree_and_follow_opencode_format(once: Once) -> None:
    for rel, doc in once.docs.items():
        key = classify(rel)
        assert key is not None
        if key.kind is FileKind.PROJECT:
            assert PROJECT_ID_RE.match(key.record_id)
            continue
        assert ID_RE.match(key.record_id), rel
        if key.kind.is_array:
            continue
        assert isinstance(doc, dict)
        assert doc["id"] == key.record_id
        if key.kind is FileKind.SESSION:
            assert doc["projectID"] == key.parent_id
            # Descending ids: the 6 time bytes are NOTed and encode time.created.
            assert id_millis(key.record_id, descending=True) == wrapped(doc["time"]["created"])
        elif key.kind is FileKind.MESSAGE:
            assert doc["sessionID"] == key.parent_id
            assert id_millis(key.record_id) == wrapped(doc["time"]["created"])
        elif key.kind is FileKind.PART:
            assert doc["messageID"] == key.parent_id


def test_some_sessions_are_children_of_existing_sessions(once: Once) -> None:
    sessions = {
        rel.rsplit("/", 1)[1][:-5]: doc for rel, doc in once.of_kind(FileKind.SESSION).items()
    }
    children = [doc for doc in sessions.values() if isinstance(doc, dict) and "parentID" in doc]
    assert len(children) >= 2
    for child in children:
        parent = sessions[child["parentID"]]
        assert isinstance(parent, dict) and parent["projectID"] == child["projectID"]
        assert child["title"].endswith("subagent)")


def test_parts_end_in_terminal_states(once: Once) -> None:
    parts = [doc for doc in once.of_kind(FileKind.PART).values() if isinstance(doc, dict)]
    types = Counter(doc["type"] for doc in parts)
    assert {"text", "reasoning", "tool", "step-start", "step-finish"} <= set(types)
    tools = [doc for doc in parts if doc["type"] == "tool"]
    statuses = Counter(doc["state"]["status"] for doc in tools)
    assert set(statuses) == {"completed", "error"}
    assert statuses["completed"] > 10 * statuses["error"]
    assert {"bash", "read", "edit", "todowrite", "task"} <= {doc["tool"] for doc in tools}
    for doc in parts:  # streamed parts end with time.end (user text parts carry no time)
        if doc["type"] in ("text", "reasoning") and "time" in doc:
            assert "end" in doc["time"]


def test_assistant_messages_carry_tokens_cost_and_some_errors(once: Once) -> None:
    messages = [doc for doc in once.of_kind(FileKind.MESSAGE).values() if isinstance(doc, dict)]
    users = [m for m in messages if m["role"] == "user"]
    assistants = [m for m in messages if m["role"] == "assistant"]
    assert users and all("model" in m and "agent" in m for m in users)
    assert all("completed" in m["time"] for m in assistants)
    paid = [m for m in assistants if m["cost"] > 0 and m["tokens"]["input"] > 0]
    errored = [m for m in assistants if "error" in m]
    assert 0 < len(paid) < len(assistants)
    assert 0 < len(errored) < len(assistants) // 10
    assert all(m["tokens"]["output"] == 0 and "finish" not in m for m in errored)
    assert all(m["finish"] in ("stop", "tool-calls") for m in assistants if "error" not in m)


def test_expected_files_match_the_disk_and_the_report(once: Once) -> None:
    assert once.sim.expected_files() == once.files
    report = once.report
    assert report.files_written == len(once.files)
    assert report.writes == report.files_written + report.rewrites
    assert report.rewrites > report.files_written  # parts and messages are rewritten in place
    assert report.deleted == () and report.faults == ()
    assert report.to_dict()["writes"] == report.writes


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        OpenCodeSimulator(tmp_path / name, seed=seed).write_sessions(3)
    first = digests(tmp_path / "a")
    assert first and first == digests(tmp_path / "b")
    assert first != digests(tmp_path / "c")


def test_faults_are_injected_reported_and_left_on_disk(tmp_path: Path) -> None:
    sim = OpenCodeSimulator(tmp_path, seed=6, faults=True)
    report = sim.write_sessions(12)  # about 4,400 writes: every kind shows up for this seed
    kinds = Counter(f.kind for f in report.faults)
    assert set(kinds) == FAULT_KINDS | {"deleted"}
    assert sim.expected_files() == disk_tree(tmp_path)
    assert report.deleted == tuple(f.rel_path for f in report.faults if f.kind == "deleted")
    for fault in report.faults:
        path = tmp_path / fault.rel_path
        if fault.kind == "deleted":
            assert not path.exists() and fault.rel_path not in sim.expected_files()
            continue
        data = path.read_bytes()
        is_array = _kind(fault.rel_path).is_array
        assert fault.final_valid == (fault.kind == "partial_then_completed")
        if fault.kind == "partial_then_completed":
            assert isinstance(orjson.loads(data), list if is_array else dict)
        elif fault.kind == "empty":
            assert data == b""
        elif fault.kind == "invalid_utf8":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        elif fault.kind == "corrupt":
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(data)
        else:
            assert isinstance(orjson.loads(data), dict if is_array else list)


def test_live_mode_streams_writes_and_rewrites_into_the_ledger(tmp_path: Path) -> None:
    written = WriteCount(300)
    sim = OpenCodeSimulator(tmp_path, seed=11)
    report = sim.run(rate_files_per_s=0, duration_s=120, stop=written.enough, on_write=written)
    ledger = written.written
    assert report.writes >= 300 and report.rewrites > 0
    assert len(ledger) == report.writes
    assert all(not rel.startswith("/") and (tmp_path / rel).is_file() for rel in ledger)
    assert sim.expected_files() == disk_tree(tmp_path)


def test_live_mode_never_runs_ahead_of_the_rate(tmp_path: Path) -> None:
    report = OpenCodeSimulator(tmp_path, seed=12).run(rate_files_per_s=200, duration_s=0.5)
    assert 1 <= report.writes <= 200 * 0.5 + 5  # pacing never runs ahead of the rate


def test_live_mode_ends_promptly_when_the_stop_event_is_set(tmp_path: Path) -> None:
    stop, twenty_written, ledger = threading.Event(), threading.Event(), list[str]()
    reports: list[SimulationReport] = []
    sim = OpenCodeSimulator(tmp_path, seed=13)

    def note(rel: str) -> None:
        ledger.append(rel)
        if len(ledger) >= 20:
            twenty_written.set()

    def live() -> None:
        reports.append(sim.run(rate_files_per_s=500, duration_s=60, stop=stop, on_write=note))

    thread = threading.Thread(target=live)
    thread.start()
    try:
        assert twenty_written.wait(5)
    finally:
        stop.set()
        thread.join(timeout=2)
    assert not thread.is_alive()
    assert reports and reports[0].seconds < 10 and reports[0].writes == len(ledger)


def test_live_mode_writes_the_same_content_for_the_same_seed(tmp_path: Path) -> None:
    def first_writes(root: Path, count: int) -> dict[str, bytes]:
        stop, seen = threading.Event(), []

        def note(rel: str) -> None:
            seen.append(rel)
            if len(seen) >= count:
                stop.set()

        sim = OpenCodeSimulator(root, seed=21)
        sim.run(rate_files_per_s=0, duration_s=30, stop=stop, on_write=note)
        return sim.expected_files()

    first = first_writes(tmp_path / "a", 400)
    assert len(first) > 50
    assert first == first_writes(tmp_path / "b", 400)


def test_writes_stay_under_the_root_even_with_faults(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    OpenCodeSimulator(root, seed=5, faults=True).write_sessions(1)
    assert {p.name for p in tmp_path.iterdir()} == {"storage"}


def test_the_sqlite_simulator_plays_the_same_story_as_the_json_one(tmp_path: Path) -> None:
    OpenCodeSimulator(tmp_path / "json", seed=3).write_sessions(2)
    files = disk_tree(tmp_path / "json")
    with SqliteSimulator(tmp_path / "sqlite" / "storage", seed=3, delete_share=0.0) as sim:
        sim.write_sessions(2)
        rows, diffs = sim.expected_rows(), sim.expected_files()
    compared = 0
    for rel, data in files.items():
        key = classify(rel)
        assert key is not None
        if key.kind in (FileKind.MESSAGE, FileKind.PART):
            assert rows[f"{key.kind.value}/{key.record_id}"] == data, rel
        elif key.kind is FileKind.TODO:
            assert rows[f"todo/{key.record_id}"] == data, rel
        elif key.kind is FileKind.SESSION_DIFF:
            assert diffs[rel] == data, rel
        else:
            continue  # project and session records carry the store's time_updated
        compared += 1
    assert compared > 200


def test_faults_are_refused_for_the_sqlite_store(tmp_path: Path) -> None:
    writer = SqliteWriter(tmp_path / "storage")
    try:
        with pytest.raises(ValueError, match="JSON files only"):
            Simulator(writer, seed=1, faults=True)
    finally:
        writer.close()


def demo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ocindex-demo")]


def test_the_demo_writer_writes_files_and_rows_until_stopped_then_closes_its_store(
    tmp_path: Path,
) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    demo = DemoWriter(root, rate_files_per_s=500)
    store = tmp_path / "opencode.db"

    def sessions_in_store() -> int:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM session_v2").fetchone()[0])
        finally:
            db.close()

    demo.start()
    try:
        assert wait_until(lambda: any(root.glob("session/*/*.json")) and sessions_in_store() > 0)
    finally:
        demo.stop()
    assert demo_threads() == []
    assert not store.with_name("opencode.db-wal").exists()  # the last close removes the WAL


def test_a_demo_writer_stopped_before_it_started_closes_its_store(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    demo = DemoWriter(root)
    assert (tmp_path / "opencode.db").exists()  # there before an engine starts, to be found
    demo.stop()
    assert demo_threads() == []
    assert not (tmp_path / "opencode.db-wal").exists()
    assert not any(root.iterdir())
