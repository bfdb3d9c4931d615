"""The tree walk: which names it lists, with which stamps, and how it stores odd names. Real
files, links and folders under tmp_path, each test walked with the C lister and with the Python
one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer import listing
from indexer.scan import disk_name, list_files, walk_columns, walk_files
from tests.helpers import write


@pytest.fixture(autouse=True, params=["c", "python"])
def lister(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "python":
        monkeypatch.setattr(listing, "_LIBRARY", None)
    elif not listing.native_listing():
        pytest.skip("the C library is not built")


def test_walk_lists_regular_files_with_their_lstat_and_passes_over_ignored_names(
    storage_root: Path,
) -> None:
    kept = write(storage_root, "part/msg_1/prt_1.json", b"{}")
    for rel in (
        "part/msg_1/.hidden.json",
        "part/msg_1/prt_2.json.tmp",
        "part/.cache/prt_3.json",
        "part/old.tmp/prt_4.json",
        "quarantine/prt_5.json",
    ):
        write(storage_root, rel, b"{}")
    os.mkfifo(storage_root / "part" / "msg_1" / "a_fifo")
    st = kept.stat()
    assert list(walk_files(storage_root)) == [("part/msg_1/prt_1.json", st.st_mtime_ns, 2)]
    assert list(list_files(storage_root)) == ["part/msg_1/prt_1.json"]


def test_walk_lists_links_unfollowed_only_when_asked(storage_root: Path, tmp_path: Path) -> None:
    write(storage_root, "session/ses_1.json", b"{}")
    outside = write(tmp_path, "outside/prt_9.json", b"{}")
    (storage_root / "session" / "to_file.json").symlink_to(outside)
    (storage_root / "session" / "to_folder").symlink_to(outside.parent)
    assert [rel for rel, _, _ in walk_files(storage_root)] == ["session/ses_1.json"]
    linked = {rel: size for rel, _, size in walk_files(storage_root, links=True)}
    assert set(linked) == {"session/ses_1.json", "session/to_file.json", "session/to_folder"}
    assert linked["session/to_file.json"] == len(os.fsencode(outside))  # the link's own size


def test_walk_stores_a_name_that_is_not_utf8_escaped_and_maps_it_back(storage_root: Path) -> None:
    folder = os.fsencode(storage_root / "part" / "msg_\xe9")
    os.makedirs(folder)
    name = os.fsdecode(b"prt_\xff.json")
    (Path(os.fsdecode(folder)) / name).write_bytes(b"{}")
    [(rel, _, size)] = walk_files(storage_root)
    assert rel == "part/msg_\xe9/prt_\\xff.json" and size == 2
    assert disk_name(rel) == f"part/msg_\xe9/{name}"


def test_walk_columns_yields_nothing_for_a_missing_root_and_skips_empty_folders(
    storage_root: Path,
) -> None:
    write(storage_root, "part/msg_1/prt_1.json", b"{}")
    (storage_root / "part" / "msg_2").mkdir()
    walk = walk_columns(storage_root / "missing")
    assert list(walk) == []
    [batch] = walk_columns(storage_root)
    assert batch.column(0).to_pylist() == ["part/msg_1/prt_1.json"]
    assert batch.num_rows == 1 and batch.column(2).to_pylist() == [2]
