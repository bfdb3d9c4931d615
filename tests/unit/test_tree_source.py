"""A legacy `project/<id>/storage` tree as a source: discovery, prefixes, keys, stamps and reads
(real files in tmp_path)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from indexer.kinds import SOURCE_PREFIX_PATTERN, FileKind
from indexer.outcome import FileStatus
from indexer.sources.tree import (
    TreeSource,
    discover_legacy_trees,
    make_tree_sources,
    tree_prefix,
)
from tests.helpers import write


def test_discovery_finds_each_project_tree_beside_the_storage_root_and_nothing_else(
    tmp_path: Path,
) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    (tmp_path / "project" / "b" / "storage").mkdir(parents=True)
    (tmp_path / "project" / "a" / "storage").mkdir(parents=True)
    (tmp_path / "project" / "no-tree").mkdir()
    write(tmp_path / "project" / "file", "storage", b"")  # a file named storage is no tree
    assert discover_legacy_trees(root) == [
        tmp_path / "project" / "a" / "storage",
        tmp_path / "project" / "b" / "storage",
    ]


def test_discovery_skips_a_tree_that_is_the_storage_root_itself(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    root.mkdir()
    (tmp_path / "project" / "same").mkdir(parents=True)
    (tmp_path / "project" / "same" / "storage").symlink_to(root)
    assert discover_legacy_trees(root) == []


def test_discovery_finds_nothing_without_a_project_folder(tmp_path: Path) -> None:
    assert discover_legacy_trees(tmp_path / "storage") == []


def test_prefixes_are_unique_for_two_trees_of_the_same_project_id(tmp_path: Path) -> None:
    trees = [tmp_path / d / "project" / "global" / "storage" for d in ("one", "two")]
    trees.append(tmp_path / "three" / "project" / "glo:b'al/" / "storage")
    trees.append(tmp_path / "three" / "project" / "glo_b_al" / "storage")
    prefixes = [s.prefix for s in make_tree_sources(trees)]
    assert prefixes[0] == "legacy:global:" and prefixes[2] == "legacy:glo_b_al:"
    assert len(set(prefixes)) == 4
    for prefix in prefixes:
        assert re.match(SOURCE_PREFIX_PATTERN, prefix)
        inner = prefix.removeprefix("legacy:").removesuffix(":")
        assert not set(inner) & {"'", '"', "/", ":"}, prefix


def test_the_same_tree_twice_is_one_source(tmp_path: Path) -> None:
    tree = tmp_path / "project" / "p" / "storage"
    tree.mkdir(parents=True)
    assert len(make_tree_sources([tree, tmp_path / "project" / "p" / ".." / "p" / "storage"])) == 1


def test_a_tree_prefix_names_its_project(tmp_path: Path) -> None:
    assert tree_prefix(tmp_path / "project" / "0a1b" / "storage") == "legacy:0a1b:"


def test_key_for_classifies_the_path_inside_the_tree_and_gives_sessions_their_project(
    tmp_path: Path,
) -> None:
    source = TreeSource(tmp_path / "project" / "p1" / "storage")
    session = source.key_for("legacy:p1:session/info/ses_1.json")
    assert session is not None
    assert (session.kind, session.record_id, session.parent_id) == (FileKind.SESSION, "ses_1", "p1")
    assert session.rel_path == "legacy:p1:session/info/ses_1.json"
    part = source.key_for("legacy:p1:session/part/ses_1/msg_1/prt_1.json")
    assert part is not None
    assert (part.kind, part.record_id, part.parent_id) == (FileKind.PART, "prt_1", "msg_1")
    share = source.key_for("legacy:p1:session/share/ses_1.json")  # a share link, no session
    assert share is not None and share.kind is FileKind.SKIPPED
    assert share.rel_path == "legacy:p1:session/share/ses_1.json"
    skipped = source.key_for("legacy:p1:readme.txt")
    assert skipped is not None and skipped.kind is FileKind.SKIPPED
    assert source.key_for("legacy:p1:.hidden.json") is None
    assert source.key_for("sqlite:opencode.db:part/prt_1") is None


def test_stamps_list_every_file_with_the_prefix_and_count_them_by_kind(tmp_path: Path) -> None:
    tree = tmp_path / "project" / "p1" / "storage"
    write(tree, "session/info/ses_1.json", b'{"id": "ses_1"}')
    write(tree, "session/message/ses_1/msg_1.json", b'{"id": "msg_1"}')
    write(tree, "readme.txt", b"x")
    write(tree, "session/share/ses_1.json", b"{}")
    write(tree, "session/info/ses_2.json.tmp", b"{")
    source = TreeSource(tree)
    stamps = source.stamps()
    assert stamps is not None
    got = sorted(
        zip(stamps.column("path").to_pylist(), stamps.column("size").to_pylist(), strict=True)
    )
    assert got == [
        ("legacy:p1:readme.txt", 1),
        ("legacy:p1:session/info/ses_1.json", 15),
        ("legacy:p1:session/message/ses_1/msg_1.json", 15),
        ("legacy:p1:session/share/ses_1.json", 2),
    ]
    described = source.describe()
    assert described["kind"] == "tree" and described["state"] == "ok"
    assert described["files"] == {"message": 1, "session": 1, "skipped": 2}


def test_stamps_of_a_tree_that_is_gone_are_empty_so_its_rows_go(tmp_path: Path) -> None:
    source = TreeSource(tmp_path / "project" / "gone" / "storage")
    stamps = source.stamps()
    assert stamps is not None and stamps.num_rows == 0
    assert source.describe()["state"] == "missing"


def test_read_parses_like_the_json_path_and_keeps_the_prefixed_key(tmp_path: Path) -> None:
    tree = tmp_path / "project" / "p1" / "storage"
    write(tree, "session/info/ses_1.json", b'{"id": "ses_1", "title": "t"}')
    write(tree, "session/info/ses_2.json", b"{not json")
    source = TreeSource(tree)
    keys = [
        source.key_for(f"legacy:p1:session/info/{name}.json")
        for name in ("ses_1", "ses_2", "ses_3")
    ]
    good, bad, gone = source.read([k for k in keys if k is not None])
    assert good.status is FileStatus.INDEXED and good.key == keys[0]
    assert good.parsed is not None and good.parsed.rows[0][:2] == ("ses_1", "p1")
    assert bad.status in (FileStatus.ERROR, FileStatus.PENDING) and bad.key == keys[1]
    assert gone.status is FileStatus.DELETED and gone.key == keys[2]


def test_a_prefix_outside_the_source_namespace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TreeSource(tmp_path, prefix="Legacy:x:")
