"""Complete rows: real OpenCode files and 1.x/2.x record shapes checked field by field against
the columns they fill (tool target, exit code, child session, full text, patch files, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from indexer import builders, rebuild
from indexer.builders import MAX_TEXT_BYTES, TARGET_CHARS
from indexer.kinds import TABLES, FileKind, classify

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "real"
DASHBOARD = REAL / "Anshgrag__amazon-tools-dashboard" / "storage"


def part(doc: dict[str, Any], record_id: str = "prt_1") -> dict[str, Any]:
    row = builders.part_row(record_id, "msg_1", doc)
    return dict(zip(TABLES[FileKind.PART].column_names, row, strict=True))


def message(doc: dict[str, Any]) -> dict[str, Any]:
    row = builders.message_row("msg_1", "ses_1", doc)
    return dict(zip(TABLES[FileKind.MESSAGE].column_names, row, strict=True))


def real(rel: str) -> dict[str, Any]:
    path = DASHBOARD / rel
    if not path.exists():
        pytest.skip(f"real corpus absent: {path}")
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    return doc


def test_a_real_bash_call_keeps_its_command_as_target_and_its_exit_code() -> None:
    doc = real("part/msg_c11f57eb6001zjdZqveZle3ppa/prt_c11f58ae6001ErmGTMBvVSj80J.json")
    row = part(doc)
    assert row["tool"] == "bash"
    assert row["tool_target"] == "ls -la" == doc["state"]["input"]["command"]
    assert row["tool_description"] == "Check project root structure"
    assert row["exit_code"] == 0 and row["interrupted"] is False
    assert row["child_session_id"] is None and row["text"] is None


def test_a_real_read_call_targets_its_file_path() -> None:
    doc = real("part/msg_c11f56c6600157xpyiulEg3j4M/prt_c11f5773e001m6QAIjxKHMx7EC.json")
    row = part(doc)
    assert row["tool_target"] == doc["state"]["input"]["filePath"]
    assert row["tool_target"].endswith("/requirements.txt")
    assert row["exit_code"] is None


def test_a_real_patch_part_keeps_its_hash_and_file_list() -> None:
    doc = real("part/msg_c11f7d2f8001UldFEqltwwuBco/prt_c11f8c1d1001cgYTB2cr7hpnfL.json")
    row = part(doc)
    assert row["patch_hash"] == "5fac99e4fb06dad014ca358a03e33f5aea2ba1e1"
    assert orjson.loads(row["patch_files"]) == doc["files"]
    assert len(doc["files"]) == 1


def test_real_assistant_messages_total_their_five_token_classes_and_keep_their_path() -> None:
    folder = DASHBOARD / "message"
    if not folder.is_dir():
        pytest.skip("real corpus absent")
    seen = 0
    for path in sorted(folder.rglob("*.json")):
        key = classify(path.relative_to(DASHBOARD).as_posix())
        assert key is not None
        doc = orjson.loads(path.read_bytes())
        row = message(doc)
        if doc.get("role") != "assistant":
            continue
        seen += 1
        classes = [row[f"tokens_{c}"] for c in ("input", "output", "reasoning")]
        classes += [row["tokens_cache_read"], row["tokens_cache_write"]]
        assert "total" not in doc["tokens"]  # real files carry no total: it is computed
        assert row["tokens_total"] == sum(classes) and row["tokens_total_computed"] is True
        assert row["cwd"] == doc["path"]["cwd"] and row["root"] == doc["path"]["root"]
    assert seen > 0


def test_real_text_parts_are_kept_whole_beside_their_preview() -> None:
    if not DASHBOARD.is_dir():
        pytest.skip("real corpus absent")
    longest = max(
        (orjson.loads(p.read_bytes()) for p in (DASHBOARD / "part").rglob("*.json")),
        key=lambda d: len(d.get("text") or "") if d.get("type") == "text" else -1,
    )
    row = part(longest)
    assert len(longest["text"]) > builders.PREVIEW_CHARS
    assert row["text"] == longest["text"] and row["text_truncated"] is False
    assert row["text_preview"] == longest["text"][: builders.PREVIEW_CHARS]


def test_a_task_call_keeps_its_child_session_subagent_and_description() -> None:
    state = {
        "status": "completed",
        "input": {"description": "Find the bug", "prompt": "…", "subagent_type": "explore"},
        "metadata": {"sessionId": "ses_child", "summary": []},
        "output": "done",
    }
    row = part({"type": "tool", "tool": "task", "state": state})
    assert row["child_session_id"] == "ses_child"
    assert row["subagent_type"] == "explore"
    assert row["tool_description"] == row["tool_target"] == "Find the bug"


def test_a_2x_content_item_keeps_shell_command_path_input_and_child_session_id() -> None:
    doc = {
        "id": "msg_2",
        "sessionID": "ses_1",
        "content": [
            {
                "type": "tool",
                "id": "call_1",
                "name": "shell",
                "state": {
                    "status": "completed",
                    "input": {"command": "make test", "description": "run tests"},
                    "content": [{"type": "text", "text": "ok"}],
                    "metadata": {"exit": 2},
                },
                "time": {"created": 1000, "completed": 1500},
            },
            {
                "type": "tool",
                "id": "call_2",
                "name": "read",
                "state": {"status": "completed", "input": {"path": "/src/a.py"}, "content": []},
            },
            {
                "type": "tool",
                "id": "call_3",
                "name": "task",
                "state": {
                    "status": "completed",
                    "input": {"description": "d", "subagent_type": "general"},
                    "metadata": {"sessionID": "ses_kid"},
                },
            },
            {"type": "text", "text": "é" * 10},
        ],
    }
    shell, read, task, text = (part(p, p["id"]) for p in rebuild.content_records(doc))
    assert (shell["tool_target"], shell["exit_code"], shell["tool_status"]) == (
        "make test",
        2,
        "completed",
    )
    assert read["tool_target"] == "/src/a.py"
    assert task["child_session_id"] == "ses_kid" and task["subagent_type"] == "general"
    assert text["text"] == "é" * 10


def test_grep_targets_its_pattern_not_the_folder_it_searches() -> None:
    state = {"status": "completed", "input": {"path": "/src", "pattern": "TODO"}}
    assert part({"type": "tool", "tool": "grep", "state": state})["tool_target"] == "TODO"


def test_a_long_command_target_is_cut_to_a_short_label() -> None:
    state = {"status": "completed", "input": {"command": "x" * 5000}}
    assert (
        len(part({"type": "tool", "tool": "bash", "state": state})["tool_target"]) == TARGET_CHARS
    )


def test_an_interrupted_call_is_flagged_and_a_nonzero_exit_kept() -> None:
    state = {"status": "error", "input": {}, "error": "aborted", "metadata": {"interrupted": True}}
    assert part({"type": "tool", "tool": "bash", "state": state})["interrupted"] is True
    ran = {"status": "completed", "input": {"command": "false"}, "metadata": {"exit": 1}}
    assert part({"type": "tool", "tool": "bash", "state": ran})["exit_code"] == 1


def test_text_over_one_mebibyte_is_cut_on_a_character_boundary_and_flagged() -> None:
    text = "ü" * MAX_TEXT_BYTES  # two bytes each: twice the cap
    row = part({"type": "reasoning", "text": text})
    kept = row["text"].encode()
    assert row["text_truncated"] is True and len(kept) == MAX_TEXT_BYTES
    assert row["text"] == "ü" * (MAX_TEXT_BYTES // 2)
    assert row["text_chars"] == len(text)  # the whole length is still recorded


def test_step_retry_and_compaction_parts_keep_their_fields() -> None:
    assert part({"type": "step-start", "snapshot": "abc"})["snapshot"] == "abc"
    error = {
        "name": "APIError",
        "data": {"message": "overloaded", "statusCode": 529, "isRetryable": True},
    }
    retry = part({"type": "retry", "attempt": 3, "error": error, "time": {"created": 1}})
    assert (retry["retry_attempt"], retry["error_message"]) == (3, "overloaded")
    assert (retry["error_status_code"], retry["error_is_retryable"]) == (529, True)
    compaction = part({"type": "compaction", "auto": True, "overflow": False})
    assert (compaction["compaction_auto"], compaction["compaction_overflow"]) == (True, False)


def test_a_user_message_keeps_its_summary_title_and_variant() -> None:
    doc = {
        "role": "user",
        "summary": {"title": "Fix the login", "diffs": []},
        "model": {"providerID": "openai", "modelID": "gpt-5", "variant": "high"},
    }
    row = message(doc)
    assert (row["summary_title"], row["variant"], row["tokens_total"]) == (
        "Fix the login",
        "high",
        None,
    )


def test_a_reported_token_total_is_kept_and_an_api_error_keeps_status_and_retryability() -> None:
    doc = {
        "role": "assistant",
        "tokens": {
            "total": 99,
            "input": 1,
            "output": 2,
            "reasoning": 0,
            "cache": {"read": 0, "write": 0},
        },
        "error": {
            "name": "APIError",
            "data": {"message": "x", "statusCode": 429, "isRetryable": True},
        },
    }
    row = message(doc)
    assert (row["tokens_total"], row["tokens_total_computed"]) == (99, False)
    assert (row["error_status_code"], row["error_is_retryable"]) == (429, True)


def test_2x_rows_keep_their_text_snapshot_variant_and_compaction_reason() -> None:
    assistant = rebuild.session_message_record(
        {
            "id": "msg_1",
            "sessionID": "ses_1",
            "type": "assistant",
            "model": {"id": "m", "providerID": "p", "variant": "default"},
            "snapshot": {"start": "s0", "end": "s1", "files": ["/a.py", "/b.py"]},
            "tokens": {"input": 1, "output": 2, "reasoning": 3, "cache": {"read": 4, "write": 5}},
        }
    )
    row = message(assistant)
    assert (row["snapshot_start"], row["snapshot_end"]) == ("s0", "s1")
    assert orjson.loads(row["patch_files"]) == ["/a.py", "/b.py"] and row["variant"] == "default"
    assert row["tokens_total"] == 15
    user = message(rebuild.session_message_record({"id": "u", "type": "user", "text": "hi ✓"}))
    assert (user["text"], user["text_truncated"]) == ("hi ✓", False)
    compaction = rebuild.session_message_record({"id": "c", "type": "compaction", "reason": "auto"})
    assert message(compaction)["compaction_auto"] is True
