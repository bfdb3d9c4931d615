from __future__ import annotations

from pathlib import Path

import pytest

from indexer.config import resolve_storage_root
from indexer.kinds import FileKind, classify
from indexer.storage import relative_path


@pytest.mark.parametrize(
    ("rel", "kind", "record_id", "parent"),
    [
        ("project/global.json", FileKind.PROJECT, "global", ""),
        ("session/global/ses_1.json", FileKind.SESSION, "ses_1", "global"),
        ("message/ses_1/msg_2.json", FileKind.MESSAGE, "msg_2", "ses_1"),
        ("part/msg_2/prt_3.json", FileKind.PART, "prt_3", "msg_2"),
        ("todo/ses_1.json", FileKind.TODO, "ses_1", ""),
        ("session_diff/ses_1.json", FileKind.SESSION_DIFF, "ses_1", ""),
        ("session/info/ses_9.json", FileKind.SESSION, "ses_9", ""),
        ("session/message/ses_9/msg_8.json", FileKind.MESSAGE, "msg_8", "ses_9"),
        ("session/part/ses_9/msg_8/prt_7.json", FileKind.PART, "prt_7", "msg_8"),
    ],
)
def test_classify_takes_kind_and_ids_from_the_relative_path(
    rel: str, kind: FileKind, record_id: str, parent: str
) -> None:
    key = classify(rel)
    assert key is not None
    assert (key.kind, key.record_id, key.parent_id, key.rel_path) == (kind, record_id, parent, rel)


@pytest.mark.parametrize(
    "rel", ["README.md", "part/msg_1/prt_1.txt", "part/prt_1.json", "snapshot/x/y.json", "x.json"]
)
def test_classify_marks_unknown_paths_skipped_not_error(rel: str) -> None:
    key = classify(rel)
    assert key is not None and key.kind is FileKind.SKIPPED


@pytest.mark.parametrize(
    "rel",
    [
        ".hidden.json",
        "part/msg_1/.oc-prt_1.json.123.tmp",
        "part/msg_1/prt_1.json.tmp",
        "quarantine/1/part/msg/prt.json",
        "part/.git/x.json",
    ],
)
def test_classify_ignores_dotfiles_tmp_and_quarantine(rel: str) -> None:
    assert classify(rel) is None


def test_kind_never_comes_from_absolute_path_parts(tmp_path: Path) -> None:
    root = tmp_path / "part" / "storage"  # a root whose own path looks like a kind
    rel = relative_path(root, root / "session" / "global" / "ses_1.json")
    assert rel == "session/global/ses_1.json"
    assert classify(rel).kind is FileKind.SESSION  # type: ignore[union-attr]
    assert relative_path(root, tmp_path / "elsewhere.json") is None


def test_the_storage_root_comes_from_the_flag_then_the_environment_then_xdg(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "opencode" / "storage").mkdir(parents=True)
    env = {"XDG_DATA_HOME": str(xdg), "OCINDEX_STORAGE": str(tmp_path / "env")}
    assert resolve_storage_root(tmp_path / "cli", env) == (tmp_path / "cli", "--storage")
    assert resolve_storage_root(None, env) == (tmp_path / "env", "$OCINDEX_STORAGE")
    del env["OCINDEX_STORAGE"]
    assert resolve_storage_root(None, env) == (xdg / "opencode" / "storage", "$XDG_DATA_HOME")


def test_opencodes_data_folder_given_as_the_storage_root_means_the_storage_folder_inside(
    tmp_path: Path,
) -> None:
    # `--storage ~/.local/share/opencode`: every file one folder too deep (all skipped) and the
    # SQLite store, looked for beside the storage folder, missed.
    with_tree, store_only, plain = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    (with_tree / "storage" / "session").mkdir(parents=True)
    store_only.mkdir()
    (store_only / "opencode-beta.db").write_bytes(b"")
    (plain / "session").mkdir(parents=True)
    (plain / "opencode.db").mkdir()  # a folder, not a store
    assert resolve_storage_root(with_tree, {}) == (with_tree / "storage", "--storage")
    assert resolve_storage_root(store_only, {}) == (store_only / "storage", "--storage")
    assert resolve_storage_root(plain, {}) == (plain, "--storage")
    env = {"OCINDEX_STORAGE": str(with_tree)}
    assert resolve_storage_root(None, env) == (with_tree / "storage", "$OCINDEX_STORAGE")
    assert resolve_storage_root(with_tree / "storage", {})[0] == with_tree / "storage"
