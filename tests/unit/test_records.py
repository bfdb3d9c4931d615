from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from indexer.kinds import TABLES, FileKey, FileKind, classify
from indexer.outcome import Failure, FailureReason, ParsedFile
from indexer.records import content_hash, parse
from indexer.scan import scan_tree
from indexer.store.rows import to_arrow
from tests.conftest import CORPUS, corpus_roots

ANSH = CORPUS / "Anshgrag__amazon-tools-dashboard" / "storage"
NOAH_LEGACY = CORPUS / "theoneand33__.local-opencode" / "project" / "global" / "storage"

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")


def parse_path(root: Path, rel: str) -> ParsedFile | Failure:
    key = classify(rel)
    assert key is not None
    return parse(key, (root / rel).read_bytes())


def row_of(result: ParsedFile | Failure, index: int = 0) -> dict[str, object]:
    assert isinstance(result, ParsedFile), result
    return dict(zip(result.table.column_names, result.rows[index], strict=True))


@needs_corpus
def test_every_real_corpus_file_parses_into_rows() -> None:
    seen = 0
    for root in corpus_roots():
        for stat in scan_tree(root):
            result = parse(stat.key, (root / stat.key.rel_path).read_bytes())
            assert isinstance(result, ParsedFile), (stat.key.rel_path, result)
            assert result.table is TABLES[stat.key.kind]
            seen += 1
    manifest_rows = len((CORPUS / "MANIFEST.csv").read_text().splitlines()) - 1
    assert seen == manifest_rows == 153


@needs_corpus
def test_a_real_assistant_message_gives_its_fields_by_value() -> None:
    row = row_of(
        parse_path(
            ANSH, "message/ses_3ee0af9f7ffeE9V7H3oKopazGS/msg_c11f50686001RbuocvSNJ82EJb.json"
        )
    )
    assert row["session_id"] == "ses_3ee0af9f7ffeE9V7H3oKopazGS"
    assert (row["role"], row["provider_id"], row["model_id"]) == (
        "assistant",
        "opencode",
        "big-pickle",
    )
    assert (row["tokens_input"], row["tokens_output"], row["tokens_reasoning"]) == (10851, 45, 1)
    assert (row["tokens_cache_read"], row["tokens_cache_write"]) == (479, 0)
    assert row["cost"] == 0.0 and row["finish"] == "tool-calls"
    assert row["time_created"] == 1769827796614 and row["time_completed"] == 1769827804996


@needs_corpus
def test_a_real_legacy_message_gives_its_cost_and_model() -> None:
    row = row_of(
        parse_path(
            NOAH_LEGACY,
            "session/message/ses_84fd3796cffeU36xWDHL63fUJR/msg_7b02c86e4001vguqK7JgKkb8nX.json",
        )
    )
    assert row["cost"] == pytest.approx(0.04668825)
    assert (row["provider_id"], row["model_id"]) == ("anthropic", "claude-sonnet-4-20250514")


@needs_corpus
def test_real_user_message_reads_nested_model() -> None:
    row = row_of(
        parse_path(
            ANSH, "message/ses_3ee1d6ebaffeYfaGO7ikV0heMc/msg_c11e29157001gq2WPyYCRxbQF7.json"
        )
    )
    assert (row["role"], row["agent"]) == ("user", "plan")
    assert (row["provider_id"], row["model_id"]) == ("opencode", "big-pickle")
    assert row["is_summary"] is False


@needs_corpus
def test_a_real_tool_part_and_step_finish_part_give_their_fields_by_value() -> None:
    tool = row_of(
        parse_path(ANSH, "part/msg_c11f5274a001pssCOr5z4JbDSA/prt_c11f53218001CGAloncxzpyQ8U.json")
    )
    assert (tool["type"], tool["tool"], tool["tool_status"]) == ("tool", "bash", "completed")
    assert tool["call_id"] == "call_fe68c17534cf4537a7960af7"
    assert tool["time_start"] == 1769827807788 and tool["time_end"] == 1769827807879
    assert len(str(tool["text_preview"])) <= 280 < int(tool["text_chars"])  # type: ignore[call-overload]
    step = row_of(
        parse_path(ANSH, "part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58bae001RTV15nW5oBAH9l.json")
    )
    assert (step["type"], step["step_reason"]) == ("step-finish", "tool-calls")
    assert (step["tokens_input"], step["tokens_output"], step["tokens_cache_read"]) == (
        575,
        43,
        32446,
    )
    assert step["cost"] == 0.0


@needs_corpus
def test_real_todo_rows_keep_positions() -> None:
    result = parse_path(ANSH, "todo/ses_3f10cb2a9ffe9jkwX4HqwTLkHX.json")
    assert isinstance(result, ParsedFile) and len(result.rows) == 5
    first, last = row_of(result, 0), row_of(result, 4)
    assert (first["position"], first["todo_id"], first["status"]) == (0, "1", "completed")
    assert first["content"] == "Improve scheduler UI design to match overall theme"
    assert (last["position"], last["priority"]) == (4, "medium")


@needs_corpus
def test_real_session_diff_rows_have_counts() -> None:
    root = CORPUS / "theoneand33__.local-opencode" / "storage"
    result = parse_path(root, "session_diff/ses_16ab6b0a5ffe06rvWv22WIZ3g6.json")
    assert isinstance(result, ParsedFile) and result.rows
    for i in range(len(result.rows)):
        row = row_of(result, i)
        assert row["session_id"] == "ses_16ab6b0a5ffe06rvWv22WIZ3g6"
        assert isinstance(row["additions"], int) and isinstance(row["deletions"], int)
        assert row["patch_chars"] is not None and row["before_chars"] is None


def _key(kind: FileKind) -> FileKey:
    rel = {
        FileKind.MESSAGE: "message/ses_1/msg_1.json",
        FileKind.TODO: "todo/ses_1.json",
        FileKind.PART: "part/msg_1/prt_1.json",
    }[kind]
    key = classify(rel)
    assert key is not None
    return key


@needs_corpus
@pytest.mark.parametrize(
    ("mutate", "kind", "reason"),
    [
        (lambda b: b"", FileKind.MESSAGE, FailureReason.EMPTY),
        (lambda b: b[: len(b) // 2], FileKind.MESSAGE, FailureReason.INVALID_JSON),
        (
            lambda b: b.replace(b"assistant", b"assist\xff\xfeant"),
            FileKind.MESSAGE,
            FailureReason.INVALID_UTF8,
        ),
        (lambda b: b"[" + b + b"]", FileKind.MESSAGE, FailureReason.NOT_OBJECT),
        (lambda b: b, FileKind.TODO, FailureReason.NOT_ARRAY),
        (lambda b: b.replace(b'"id"', b'"xid"', 1), FileKind.MESSAGE, FailureReason.MISSING_ID),
    ],
)
def test_each_way_of_breaking_a_real_file_gives_its_failure_reason(
    tmp_path: Path, mutate: object, kind: FileKind, reason: FailureReason
) -> None:
    real = (
        ANSH / "message/ses_3ee0af9f7ffeE9V7H3oKopazGS/msg_c11f50686001RbuocvSNJ82EJb.json"
    ).read_bytes()
    broken = mutate(real)  # type: ignore[operator]
    path = tmp_path / "f.json"
    path.write_bytes(broken)
    result = parse(_key(kind), path.read_bytes())
    assert isinstance(result, Failure)
    assert result.reason is reason
    assert result.message


def test_invalid_json_reports_parser_position() -> None:
    result = parse(_key(FileKind.MESSAGE), b'{"id": "msg_1", "role": ')
    assert isinstance(result, Failure) and result.reason is FailureReason.INVALID_JSON
    assert "byte" in result.message and "line 1" in result.message


def test_too_large_uses_configurable_limit() -> None:
    data = orjson.dumps({"id": "prt_1", "type": "text", "text": "x" * 5000})
    result = parse(_key(FileKind.PART), data, max_file_bytes=1000)
    assert isinstance(result, Failure) and result.reason is FailureReason.TOO_LARGE
    assert isinstance(parse(_key(FileKind.PART), data), ParsedFile)


def test_drift_is_tolerated_summary_true_wrong_types_unknown_part() -> None:
    msg = parse(
        _key(FileKind.MESSAGE),
        orjson.dumps({"id": "m", "role": "assistant", "summary": True, "cost": "abc", "tokens": 5}),
    )
    row = row_of(msg)
    assert row["is_summary"] is True and row["cost"] is None and row["tokens_input"] is None
    part = row_of(
        parse(_key(FileKind.PART), orjson.dumps({"id": "p", "type": "hologram", "x": [1]}))
    )
    assert part["type"] == "hologram" and part["tool"] is None


def test_large_strings_are_capped() -> None:
    huge = "y" * 1_000_000
    row = row_of(
        parse(_key(FileKind.PART), orjson.dumps({"id": "p", "type": "text", "text": huge}))
    )
    assert row["text_chars"] == 1_000_000 and len(str(row["text_preview"])) == 280
    msg = row_of(
        parse(
            _key(FileKind.MESSAGE), orjson.dumps({"id": "m", "error": {"data": {"message": huge}}})
        )
    )
    assert len(str(msg["error_message"])) <= 2000


def test_ids_come_from_the_path_not_the_file() -> None:
    row = row_of(parse(_key(FileKind.MESSAGE), orjson.dumps({"id": "other", "sessionID": "ses_x"})))
    assert row["id"] == "msg_1" and row["session_id"] == "ses_1"


def test_content_hash_changes_with_bytes() -> None:
    assert content_hash(b"a") == content_hash(b"a") != content_hash(b"b")


@pytest.mark.parametrize(
    "hostile",
    [
        b"9223372036854775808",  # 2**63: past BIGINT, still an integer to orjson
        b"18446744073709551615",  # 2**64 - 1
        b"18446744073709551616",  # 2**64: a float to orjson
        b"-9223372036854775809",
        b"1e308",
    ],
)
def test_a_number_outside_what_the_columns_hold_is_stored_as_null(hostile: bytes) -> None:
    """A hostile number never fails its file or its batch: the field is NULL, the rest kept."""
    key = classify("message/ses_1/msg_1.json")
    assert key is not None
    text = b'{"id": "msg_1", "role": "assistant", "tokens": {"input": %s, "output": 7}}' % hostile
    result = parse(key, text)
    assert isinstance(result, ParsedFile)
    row = dict(zip(result.table.column_names, result.rows[0], strict=True))
    assert row["tokens_input"] is None
    assert row["tokens_output"] == 7 and row["role"] == "assistant"
    assert to_arrow(result.table, result.rows).num_rows == 1  # no OverflowError


@pytest.mark.parametrize("hostile", [b"18446744073709551615", b"1e308", b"-1e308"])
def test_a_huge_but_finite_cost_is_kept_as_a_double(hostile: bytes) -> None:
    key = classify("message/ses_1/msg_1.json")
    assert key is not None
    result = parse(key, b'{"id": "msg_1", "cost": %s}' % hostile)
    assert isinstance(result, ParsedFile)
    row = dict(zip(result.table.column_names, result.rows[0], strict=True))
    assert row["cost"] == float(hostile)
    assert to_arrow(result.table, result.rows).num_rows == 1
