"""The batch reader: the C library (indexer/native/read_files.c) reads the plain files and
leaves the rest to reader.read_file, and every read is the one read_file gives on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from indexer.kinds import FileKey, classify
from indexer.listing import stored_path
from indexer.outcome import FileRead, FileStatus
from indexer.pipeline import batch_read
from indexer.pipeline.batch_read import read_files
from indexer.pipeline.reader import ProcessorConfig, read_file
from tests.helpers import write

needs_library = pytest.mark.skipif(batch_read._FUNCTION is None, reason="the C reader is not built")

CONFIG = ProcessorConfig(max_file_bytes=4096)


def wall() -> float:
    return 1.9e9  # one clock for both readers (settling depends on it)


def key(rel: str) -> FileKey:
    found = classify(rel)
    assert found is not None, rel
    return found


@pytest.fixture
def odd_tree(storage_root: Path, tmp_path: Path) -> list[FileKey]:
    """Every kind of file a batch meets, plain and not."""
    files = {
        "project/p1.json": b'{"id": "p1", "worktree": "/w"}',
        "session/p1/ses_1.json": b'{"id": "ses_1", "projectID": "p1", "title": "t"}',
        "message/ses_1/msg_1.json": b'{"id": "msg_1", "sessionID": "ses_1", "role": "user"}',
        "message/ses_1/msg_big.json": b'{"id": "msg_big", "tokens": {"input": 99999999999999999999}}',
        "part/msg_1/prt_1.json": b'{"id": "prt_1", "messageID": "msg_1", "type": "text", "text": "hi"}',
        "part/msg_1/prt_empty.json": b"",
        "part/msg_1/prt_space.json": b"  \n",
        "part/msg_1/prt_cut.json": b'{"id": "prt_cut", "messageID": "msg_1", "ty',
        "part/msg_1/prt_latin.json": b'{"id": "prt_latin", "text": "\xe9t\xe9"}',
        "part/msg_1/prt_array.json": b"[1, 2]",
        "part/msg_1/prt_huge.json": b'{"id": "prt_huge", "text": "' + b"x" * 5000 + b'"}',
        "part/msg_1/prt_\u00e9t\u00e9.json": b'{"id": "prt_\xc3\xa9t\xc3\xa9", "text": "a name in UTF-8"}',
        "message/ses_1/readme.md": b"not a record",
        "todo/ses_1.json": b'[{"id": "t1", "content": "do", "status": "pending"}]',
    }
    for rel, data in files.items():
        write(storage_root, rel, data)
    keys = [key(rel) for rel in files]
    os.symlink(tmp_path / "elsewhere.json", storage_root / "part/msg_1/prt_link.json")
    os.mkfifo(storage_root / "part/msg_1/prt_fifo.json")
    (storage_root / "part/msg_1/prt_dir.json").mkdir()
    future = write(storage_root, "part/msg_1/prt_future.json", b"{not json")
    os.utime(future, (4e9, 4e9))
    bad = os.fsencode(storage_root / "part/msg_1") + b"/prt_\xff.json"
    with open(bad, "wb") as fh:
        fh.write(b'{"id": "x"}')
    keys += [
        key(rel)
        for rel in (
            "part/msg_1/prt_link.json",
            "part/msg_1/prt_fifo.json",
            "part/msg_1/prt_dir.json",
            "part/msg_1/prt_future.json",
            "part/msg_1/prt_gone.json",
            stored_path(os.fsdecode(b"part/msg_1/prt_\xff.json")),
        )
    ]
    return keys


def one_by_one(root: Path, keys: list[FileKey]) -> list[FileRead]:
    return [read_file(root, k, CONFIG, 0, wall) for k in keys]


def same(reads: list[FileRead]) -> list[FileRead]:
    """The reads, a retry's delay to the tenth of a second: a file whose mtime lies in the
    future settles by how long this process has seen it, which moves between two reads."""
    return [replace(r, retry_in_s=r.retry_in_s and round(r.retry_in_s, 1)) for r in reads]


@needs_library
def test_every_read_is_the_one_read_file_gives(
    storage_root: Path, odd_tree: list[FileKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    in_python: list[str] = []

    def python_read(root: Path, key: FileKey, *args: object) -> FileRead:
        in_python.append(key.rel_path.rsplit("/", 1)[-1])
        return read_file(root, key, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_read, "read_file", python_read)
    reads = read_files(storage_root, odd_tree, CONFIG, wall)
    plain = {"p1.json", "ses_1.json", "msg_1.json", "msg_big.json", "prt_1.json", "prt_cut.json"}
    plain.add("prt_\u00e9t\u00e9.json")
    assert plain.isdisjoint(in_python)  # read in C, their bytes decided in Python
    assert {"prt_huge.json", "prt_link.json", "prt_fifo.json", "prt_dir.json"} <= set(in_python)
    assert {"prt_gone.json", "readme.md"} <= set(in_python)
    assert same(reads) == same(one_by_one(storage_root, odd_tree))
    statuses = {r.key.rel_path.rsplit("/", 1)[-1]: r.status for r in reads}
    assert statuses["msg_1.json"] is FileStatus.INDEXED
    assert statuses["prt_huge.json"] is FileStatus.ERROR  # over the limit: read in Python
    assert statuses["prt_link.json"] is FileStatus.SKIPPED


@needs_library
def test_a_batch_bigger_than_the_buffer_is_read_in_several_calls(
    storage_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_read, "BUFFER_BYTES", 1000)
    monkeypatch.setattr(batch_read, "_BUFFERS", type(batch_read._BUFFERS)())
    calls = []
    function = batch_read._FUNCTION
    assert function is not None

    def counted(*args: object) -> int:
        calls.append(args[1])
        return int(function(*args))

    monkeypatch.setattr(batch_read, "_FUNCTION", counted)
    keys = []
    for i in range(40):  # about 80 bytes each: a dozen to a buffer
        text = f'{{"id": "prt_{i:02d}", "messageID": "msg_1", "type": "text", "text": "{i}"}}'
        rel = f"part/msg_1/prt_{i:02d}.json"
        write(storage_root, rel, text.encode())
        keys.append(key(rel))
    write(
        storage_root,
        "part/msg_1/prt_long.json",
        b'{"id": "prt_long", "text": "' + b"y" * 2000 + b'"}',
    )
    keys.insert(7, key("part/msg_1/prt_long.json"))  # bigger than the buffer: read in Python
    reads = read_files(storage_root, keys, CONFIG, wall)
    assert reads == one_by_one(storage_root, keys)
    assert all(r.status is FileStatus.INDEXED for r in reads)
    assert len(calls) >= 3, calls  # ten or so files a call


def test_without_the_library_every_file_is_read_in_python(
    storage_root: Path, odd_tree: list[FileKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_read, "_FUNCTION", None)
    reads = read_files(storage_root, odd_tree, CONFIG, wall)
    assert same(reads) == same(one_by_one(storage_root, odd_tree))


def test_the_c_reader_is_built_wherever_a_c_compiler_is() -> None:
    # `make` builds it: a machine with a compiler and no library reads files more slowly.
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler here: files are read in Python")
    assert batch_read.LIBRARY.exists(), "run `make lint` (or `make test`) to build it"
    assert batch_read._FUNCTION is not None


def test_a_library_of_another_version_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        pytest.skip("no C compiler here")
    # A name of its own: the dynamic loader hands back a library already loaded from a path.
    library = tmp_path / f"_read_files_{uuid.uuid4().hex}.so"
    source = tmp_path / "other.c"
    source.write_text(
        "int ocindex_read_files_abi(void) { return 99; }\nint ocindex_read_files(void) { return 0; }\n"
    )
    built = subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", library, source], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    assert batch_read._load(library) is None
    assert "files are read in Python" in caplog.text and "of ABI 99, not 1" in caplog.text
    caplog.clear()
    assert batch_read._load(tmp_path / "missing.so") is None
    assert caplog.text == ""  # not built: said nowhere, the reads are the same
