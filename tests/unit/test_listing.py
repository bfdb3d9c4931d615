"""The folder listers: the C one (indexer/native/list_folder.c) gives the rows and subfolders
the Python one gives, on real folders of odd names, links, fifos, hostile dates and more files
than its buffers hold at first."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from indexer import listing
from indexer.listing import STAMPS, Folder, NativeLister, PythonLister, new_lister
from tests.helpers import write

native = pytest.mark.skipif(not listing.native_listing(), reason="the C library is not built")

Row = tuple[str, int, int]


def listed(lister: listing.Lister, folders: list[Folder]) -> tuple[list[Row], list[Folder]]:
    """Every row and subfolder of the folders (not below them), each sorted."""
    subfolders: list[Folder] = []
    for folder, prefix in folders:
        lister.list_folder(folder, prefix, subfolders)
    batches = lister.take()
    assert all(batch.schema == STAMPS for batch in batches)
    table = pa.Table.from_batches(batches, STAMPS)
    assert lister.rows == 0 and lister.take() == []
    rows = list(zip(*(c.to_pylist() for c in table.columns), strict=True))
    return sorted(rows), sorted(subfolders)


@pytest.fixture
def odd(storage_root: Path, tmp_path: Path) -> Path:
    """A folder of everything the walk must tell apart."""
    folder = storage_root / "part" / "msg_1"
    write(folder, "prt_1.json", b"{}")
    write(folder, "prt_2.json", b"{ }")
    for ignored in (".hidden.json", "prt_3.json.tmp", ".cache/prt.json", "old.tmp/prt.json"):
        write(folder, ignored, b"{}")
    write(folder, "sub/prt_4.json", b"{}")  # a subfolder: listed as one, not entered
    write(folder, "caf\xe9.json", b"{}")  # UTF-8, not ASCII: stored as it is
    (folder / os.fsdecode(b"prt_\xff.json")).write_bytes(b"{}")  # not UTF-8: escaped
    os.makedirs(os.fsencode(folder / os.fsdecode(b"msg_\xfe")))
    os.mkfifo(folder / "a_fifo")
    outside = write(tmp_path, "outside/prt_9.json", b"{}")
    (folder / "to_file.json").symlink_to(outside)
    (folder / "to_folder").symlink_to(outside.parent)
    (folder / "dangling.json").symlink_to(tmp_path / "nothing")
    dated = {"prt_2400.json": 13_569_465_600 * 10**9, "prt_1600.json": -11_676_096_000 * 10**9}
    for name, ns in dated.items():
        write(folder, name, b"{}")
        os.utime(folder / name, ns=(ns, ns))
    write(folder, "prt_1900.json", b"{}")
    os.utime(folder / "prt_1900.json", ns=(-2_208_988_800 * 10**9 + 5,) * 2)  # fits: exact
    return folder


@native
@pytest.mark.parametrize("links", [True, False])
def test_the_c_lister_lists_a_folder_as_python_does(
    odd: Path, storage_root: Path, links: bool
) -> None:
    folders = [(str(odd), "part/msg_1/")]
    rows, subfolders = listed(NativeLister(links), folders)
    assert (rows, subfolders) == listed(PythonLister(links), folders)
    names = {path.removeprefix("part/msg_1/") for path, _, _ in rows}
    plain = {"prt_1.json", "prt_2.json", "caf\xe9.json", "prt_\\xff.json", "prt_1900.json"}
    plain |= {"prt_2400.json", "prt_1600.json"}
    assert names == (plain | {"to_file.json", "to_folder", "dangling.json"} if links else plain)
    stamps = {path.removeprefix("part/msg_1/"): (mtime, size) for path, mtime, size in rows}
    assert stamps["prt_2.json"] == ((odd / "prt_2.json").stat().st_mtime_ns, 3)
    assert stamps["prt_2400.json"][0] == 2**63 - 1 and stamps["prt_1600.json"][0] == -(2**63)
    assert stamps["prt_1900.json"][0] == -2_208_988_800 * 10**9 + 5
    assert [prefix for _, prefix in subfolders] == [
        "part/msg_1/msg_\\xfe/",
        "part/msg_1/sub/",
    ]


@native
def test_the_c_lister_grows_its_buffers_and_hands_over_full_ones(storage_root: Path) -> None:
    folders: list[Folder] = []
    for m in range(3):
        folder = storage_root / "part" / f"msg_{m}"
        for p in range(300 * (m + 1)):  # 300, 600 and 900 files: past 64 rows at once
            write(folder, f"prt_{p:04d}_{'x' * 40}.json", b"{}" * (p % 7))
        folders.append((str(folder), f"part/msg_{m}/"))
    small = NativeLister(links=False, rows=64)
    rows, _ = listed(small, folders)
    assert len(rows) == 1800 and len({path for path, _, _ in rows}) == 1800
    assert (rows, []) == listed(PythonLister(links=False), folders)


@native
@pytest.mark.parametrize("links", [True, False])
def test_a_lister_without_stamps_lists_the_same_paths_with_null_stamps(
    odd: Path, storage_root: Path, tmp_path: Path, links: bool
) -> None:
    plain = storage_root / "part" / "msg_2"  # ASCII names only: C lists it whole
    for name in ("prt_1.json", "prt_2.json", ".hidden.json", "prt_3.json.tmp", "sub/prt_4.json"):
        write(plain, name, b"{}")
    os.mkfifo(plain / "a_fifo")
    outside = write(tmp_path, "outside/prt_9.json", b"{}")
    (plain / "to_file.json").symlink_to(outside)
    (plain / "to_folder").symlink_to(outside.parent)
    (plain / "dangling.json").symlink_to(tmp_path / "nothing")
    folders = [(str(plain), "part/msg_2/")]
    stamped = listed(NativeLister(links), folders)
    rows, subfolders = listed(NativeLister(links, stamps=False), folders)
    # Links (with links=False), the fifo and the subfolder are told apart all the same, with no
    # lstat: the listing's types say what each name is.
    assert ([path for path, _, _ in rows], subfolders) == (
        [path for path, _, _ in stamped[0]],
        stamped[1],
    )
    assert len(rows) == (5 if links else 2)
    assert all(mtime is None and size is None for _, mtime, size in rows)
    # A folder C hands to Python (a name that is not ASCII) keeps its stamps.
    odd_folders = [(str(odd), "part/msg_1/")]
    assert listed(NativeLister(links, stamps=False), odd_folders) == listed(
        NativeLister(links), odd_folders
    )


@native
def test_a_folder_of_many_subfolders_grows_only_the_buffer_of_their_names(
    storage_root: Path,
) -> None:
    folder = storage_root / "part"
    for m in range(3000):  # ~120 KB of names: 30 times what the buffer holds at first
        (folder / f"msg_{m:05d}_{'x' * 32}").mkdir(parents=True)
    write(folder, "stray.json", b"{}")
    small = NativeLister(links=False, rows=64)
    before = small._out.rows_cap, small._out.paths_cap
    found = listed(small, [(str(folder), "part/")])
    assert found == listed(PythonLister(links=False), [(str(folder), "part/")])
    assert len(found[0]) == 1 and len(found[1]) == 3000
    # The rows' buffers had room all along: they did not grow with the names (they once
    # doubled with them, to 131,072 rows and 8 MB of paths for 3,902 subfolders).
    assert (small._out.rows_cap, small._out.paths_cap) == before
    assert small._out.dirs_cap < 2 * 3000 * 44


@pytest.mark.parametrize("native_lister", [True, False], ids=["c", "python"])
def test_a_folder_that_vanished_or_is_no_folder_lists_nothing(
    storage_root: Path, native_lister: bool
) -> None:
    if native_lister and not listing.native_listing():
        pytest.skip("the C library is not built")
    file = write(storage_root, "project/p.json", b"{}")
    lister = new_lister(links=True, native=native_lister)
    gone = [(str(storage_root / "gone"), "gone/"), (str(file), "project/p.json/")]
    assert listed(lister, gone) == ([], [])


def test_the_c_library_is_built_wherever_a_c_compiler_is() -> None:
    # `make` builds it; a machine with a compiler and no library has lost half the walk's speed.
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler here: the walk runs in Python")
    assert listing.LIBRARY.exists(), "run `make lint` (or `make test`) to build it"
    assert listing.native_listing()


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (
            "int ocindex_list_folder_abi(void) { return 99; }\nint ocindex_list_folder(void) { return 0; }",
            "of ABI 99, not 4",
        ),
        ("int something_else(void) { return 0; }", "undefined symbol"),
        (None, "cannot be used"),
    ],
    ids=["another-abi", "no-such-function", "not-a-library"],
)
def test_a_library_of_another_version_or_none_at_all_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, source: str | None, why: str
) -> None:
    compiler = shutil.which(os.environ.get("CC", "cc"))
    # A name of its own: the dynamic loader hands back a library already loaded from a path.
    library = tmp_path / f"_list_folder_{uuid.uuid4().hex}.so"
    if source is None:
        library.write_text("not a shared library\n")
    elif compiler is None:
        pytest.skip("no C compiler here")
    else:
        (tmp_path / "other.c").write_text(source + "\n")
        built = subprocess.run(
            [compiler, "-shared", "-fPIC", "-o", library, tmp_path / "other.c"],
            capture_output=True,
            text=True,
        )
        assert built.returncode == 0, built.stderr
    assert listing._load(library) is None
    assert "the tree is walked in Python" in caplog.text and why in caplog.text
    caplog.clear()
    assert listing._load(tmp_path / "missing.so") is None
    assert caplog.text == ""  # not built: said nowhere, the walk is the same
