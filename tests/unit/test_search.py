"""`ocindex search` over a real DuckDB index written through the real parser: accented, Greek,
CJK and emoji text found whatever its case, a miss, one session, a day range in a time zone,
fork copies left out, JSON output; idle (the file read-only) and live (through the socket of
the process holding the file)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from indexer import search as search_module
from indexer.cli import main
from indexer.cli.search import text_lines
from indexer.kinds import classify
from indexer.live.address import socket_path
from indexer.live.readonly import QueryError
from indexer.live.server import LiveServer
from indexer.outcome import ParsedFile
from indexer.records import parse
from indexer.search import caseless_run, regex, search
from indexer.store.rows import write_parsed
from indexer.store.schema import migrate
from tests.support.live_host import ConnectionHost

HOUR_MS = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
ALPHA = "ses_ffd0aaaaaaaaAlpha0001"
BETA = "ses_ffd0bbbbbbbbBetaa0002"


def put(conn: duckdb.DuckDBPyConnection, rel: str, doc: dict[str, Any]) -> None:
    key = classify(rel)
    assert key is not None
    parsed = parse(key, orjson.dumps({"id": key.record_id, **doc}))
    assert isinstance(parsed, ParsedFile)
    write_parsed(conn, [parsed])


def text_part(sid: str, text: str, at_ms: int, **extra: object) -> dict[str, object]:
    return {"type": "text", "sessionID": sid, "text": text, "time": {"start": at_ms}, **extra}


def fill(c: duckdb.DuckDBPyConnection) -> None:
    migrate(c)
    put(c, f"session/p1/{ALPHA}.json", {"title": "Vacances d'Été", "time": {"created": T0}})
    put(c, f"session/p1/{BETA}.json", {"title": "Build fixes", "time": {"created": T0}})
    for mid, sid, at in (("msg_a", ALPHA, T0), ("msg_b", BETA, T0 + 30 * HOUR_MS)):
        put(c, f"message/{sid}/{mid}.json", {"role": "user", "time": {"created": at}})
    long = "x" * 300 + " the SECRET word " + "y" * 300
    put(c, "part/msg_a/prt_1.json", text_part(ALPHA, "Un été à Paris 🙂", T0 + HOUR_MS))
    put(c, "part/msg_a/prt_2.json", text_part(ALPHA, "日本語のテキストです 🚀 fin", T0 + HOUR_MS))
    put(c, "part/msg_a/prt_3.json", text_part(ALPHA, "ΣΊΣΥΦΟΣ rolls", T0 + 2 * HOUR_MS))
    put(c, "part/msg_a/prt_4.json", text_part(ALPHA, "a forked été", T0, forkCopy=True))
    put(c, "part/msg_a/prt_5.json", text_part(ALPHA, long, T0 + 3 * HOUR_MS))
    reasoning = text_part(BETA, "Thinking: l'été prochain", T0 + 30 * HOUR_MS)
    put(c, "part/msg_b/prt_6.json", reasoning | {"type": "reasoning"})
    # No time of its own: the part takes its message's.
    put(c, "part/msg_b/prt_7.json", {"type": "text", "sessionID": BETA, "text": "it's ÉTÉ"})
    state = {"status": "completed", "input": {"command": "pytest -q ÉTÉ/tests"}}
    tool = {"type": "tool", "tool": "bash", "sessionID": BETA, "state": state}
    put(c, "part/msg_b/prt_8.json", tool | {"state": state | {"time": {"start": T0}}})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "index.duckdb"
    with duckdb.connect(str(path)) as c:
        fill(c)
    return path


def ids(db: Path, text: str, **kw: Any) -> list[str]:
    return [h.record_id for h in search(db, text, tz="UTC", **kw).hits]


def cli_json(db: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["search", *args, "--db", str(db), "--json", "--tz", "UTC"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_search_finds_accented_text_in_any_case_in_every_kind_once(db: Path) -> None:
    result = search(db, "ÉTÉ", tz="UTC")
    got = [(h.kind, h.record_id) for h in result.hits]
    # Newest first; the fork copy (prt_4) is left out; a title and a tool target count too.
    assert got == [
        ("reasoning", "prt_6"),
        ("text", "prt_7"),
        ("text", "prt_1"),
        ("tool", "prt_8"),
        ("title", ALPHA),
    ]
    assert result.total == 5 and result.live_pid is None and result.time_zone == "UTC"
    first = result.hits[0]
    assert (first.before, first.match, first.after) == ("Thinking: l'", "été", " prochain")
    assert first.session_title == "Build fixes" and first.session_id == BETA
    assert str(result.hits[1].at) == "2026-01-02 06:00:00"  # its message's time
    assert result.hits[3].detail == "bash"
    assert ids(db, "été") == [h.record_id for h in result.hits]


def test_snippets_fetched_in_batches_equal_those_fetched_at_once(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = search(db, "été", tz="UTC")
    monkeypatch.setattr(search_module, "SNIPPET_BATCH", 2)
    assert search(db, "été", tz="UTC").hits == whole.hits
    assert all(h.match.lower() == "été" and h.session_title for h in whole.hits)


def test_search_folds_greek_sigmas_and_finds_cjk_and_emoji(db: Path) -> None:
    assert ids(db, "σίσυφος") == ["prt_3"]  # final ς in the text's capitals
    assert ids(db, "テキスト") == ["prt_2"]
    assert ids(db, "🚀 FIN") == ["prt_2"]
    # A caseless run narrows the texts first; the letters around it still ignore case.
    assert caseless_run("のテキストです 🚀 FIN") == "のテキストです 🚀 "
    assert ids(db, "のテキストです 🚀 FIN") == ["prt_2"]
    assert ids(db, "🙂") == ["prt_1"]


def test_search_treats_pattern_characters_and_quotes_literally(db: Path) -> None:
    assert ids(db, "d'été") == [ALPHA]
    assert ids(db, ".*") == []
    assert ids(db, "q ÉTÉ/") == ["prt_8"]
    assert regex("a.b é") == "(?i)a\\x{2e}b\\x{20}\\x{e9}"


def test_a_miss_prints_no_match_and_exits_0(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "automne", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "no match for 'automne'"
    assert cli_json(db, "automne", capsys=capsys)["total"] == 0


def test_search_keeps_to_one_session_given_its_id_or_either_end_of_it(db: Path) -> None:
    assert ids(db, "été", session=BETA) == ["prt_6", "prt_7", "prt_8"]
    assert ids(db, "été", session="Alpha0001") == ["prt_1", ALPHA]
    assert ids(db, "été", session="ses_ffd0aaaa") == ["prt_1", ALPHA]
    assert ids(db, "été", session="nobody") == []


def test_since_and_until_are_local_days_in_the_time_zone(db: Path) -> None:
    day2 = dt.date(2026, 1, 2)
    assert ids(db, "été", since=day2) == ["prt_6", "prt_7"]
    assert ids(db, "été", until=dt.date(2026, 1, 1)) == ["prt_1", "prt_8", ALPHA]
    # 06:00 UTC on Jan 2 is still Jan 1 in Los Angeles.
    late = search(db, "été", since=day2, tz="America/Los_Angeles")
    assert [h.record_id for h in late.hits] == []
    assert str(search(db, "prochain", tz="Asia/Tokyo").hits[0].at) == "2026-01-02 15:00:00"


def test_the_snippet_is_cut_around_the_match_and_marked_in_json(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = cli_json(db, "secret", "--limit", "1", capsys=capsys)
    assert report["total"] == 1 and report["shown"] == 1 and report["time_zone"] == "UTC"
    hit = report["hits"][0]
    assert hit["snippet"] == "…" + "x" * 55 + " the [[SECRET]] word " + "y" * 54 + "…"
    assert hit["kind"] == "text" and hit["session_id"] == ALPHA
    assert hit["time"] == "2026-01-01T03:00:00" and hit["match"] == "SECRET"
    report = cli_json(db, "été", "--limit", "2", capsys=capsys)
    assert report["total"] == 5 and len(report["hits"]) == 2


def test_the_text_output_names_session_time_and_kind_and_marks_the_match(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "PARIS", "--db", str(db), "--tz", "UTC"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["2026-01-01", "01:00", "text", "Vacances", "d'Été", "(lpha0001)"]
    assert lines[1] == "    Un été à [[Paris]] 🙂"
    assert lines[2] == "1 hit; times in UTC"
    coloured = text_lines(search(db, "PARIS", tz="UTC"), colour=True)
    assert coloured[1] == "    Un été à \x1b[1;33mParis\x1b[0m 🙂"


def test_bad_arguments_exit_2_and_a_missing_index_exits_1(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "x", "--db", str(db), "--tz", "Nowhere/Foo"]) == 2
    assert main(["search", "  ", "--db", str(db)]) == 2
    assert (
        main(["search", "x", "--db", str(db), "--since", "2026-02-01", "--until", "2026-01-01"])
        == 2
    )
    assert main(["search", "x", "--db", str(tmp_path / "none.duckdb")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[0]
        == "ocindex: error: unknown time zone 'Nowhere/Foo'; expected a name such as Europe/Paris"
    )
    assert err[-1].startswith("ocindex: error: no database at")


def test_an_index_before_schema_6_is_refused_in_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as c:
        c.execute("CREATE TABLE parts (id VARCHAR, text_preview VARCHAR)")
    with pytest.raises(QueryError, match="predates schema 6"):
        search(old, "x")


@pytest.fixture
def live(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect(str(db))  # holds the file: only the socket can read it now
    server = LiveServer(ConnectionHost(conn), socket_path(db))
    try:
        yield conn
    finally:
        server.stop()
        conn.close()


@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
def test_search_of_a_held_index_goes_through_its_live_endpoint_and_sees_new_rows(
    db: Path, live: duckdb.DuckDBPyConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    result = search(db, "ÉTÉ", tz="UTC")
    assert result.live_pid == os.getpid() and result.total == 5
    put(live, "part/msg_b/prt_9.json", text_part(BETA, "encore l'été", T0 + 40 * HOUR_MS))
    assert ids(db, "été")[0] == "prt_9"
    report = cli_json(db, "été", "--session", BETA, capsys=capsys)
    assert report["live_pid"] == os.getpid()
    assert [h["record_id"] for h in report["hits"]] == ["prt_9", "prt_6", "prt_7", "prt_8"]
