"""A reading worker process: takes tasks (files to read) from one pipe and answers each on
another with the files' outcomes and their rows built as Arrow tables. Never touches the
database and never decides anything `indexer.pipeline.reader` does not.

Run by `indexer.pipeline.read_pool` as `python -m indexer.pipeline.read_worker TASKS ANSWERS
[TASKS ANSWERS ...]` (inherited descriptors, two per worker): the process started serves the
first pair and, once imported, forks one sibling for each other pair. Each exits when its task
pipe closes: its parent stopped, or died.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection

import pyarrow as pa

from indexer.builders import Source
from indexer.collector import collect_less
from indexer.kinds import KIND_NAMED, SPECS, FileKind, Table, WireKey, from_wire
from indexer.outcome import FileRead, FileStamp, Found, decide
from indexer.pipeline.batch_read import plain_bytes, plain_path
from indexer.pipeline.reader import ProcessorConfig, parsed_cleanly, read_file, read_unclean
from indexer.sources.base import PortableReader, RecordReader
from indexer.store.rows import columns_to_arrow

Outcome = tuple[
    str, int | None, int | None, str | None, str | None, float | None, str | None, int, int
]
"""One file as a worker sends it: status, mtime_ns, size, content hash, message, retry delay,
the owner id of its rows (None: nothing parsed), and where its rows start in its kind's table
and how many there are. Plain values: a dataclass costs ten times more to pickle."""

Answer = tuple[list[Outcome], dict[str, pa.Table]]

Origin = str | PortableReader
"""Where a task's keys are read: files under a storage root, or a source's records."""

_opened: dict[PortableReader, RecordReader] = {}
"""The sources' readers this process opened (a store's connection lives as long as it)."""


def read_task(origin: Origin, keys: Sequence[WireKey], config: ProcessorConfig) -> Answer:
    """Read these files (or records) and build each kind's rows as one Arrow table, in the
    keys' order."""
    if isinstance(origin, str):
        return _files_answer(origin, keys, config)
    reader = _opened.get(origin)
    if reader is None:
        reader = _opened[origin] = origin.open()
    found = {r.key.rel_path: r for r in reader.read([from_wire(w) for w in keys])}
    sources: dict[FileKind, list[Source]] = {}
    outcomes = [_outcome(found[key[0]], sources) for key in keys]
    return outcomes, _tables(sources)


def _files_answer(root: str, keys: Sequence[WireKey], config: ProcessorConfig) -> Answer:
    """read_files' reads as outcomes: a plain file that parses cleanly (most) makes no object,
    the others are decided by read_unclean or read_file as anywhere else."""
    found = plain_bytes(root, [plain_path(rel, kind) for rel, kind, _, _ in keys], config)
    status, retry_in_s = decide(Found.PARSED, config.first_read)
    indexed = status.value
    outcomes: list[Outcome] = []
    sources: dict[FileKind, list[Source]] = {}
    for place, wire in enumerate(keys):
        plain = found.get(place)
        if plain is None:
            outcomes.append(_outcome(read_file(root, from_wire(wire), config), sources))
            continue
        data, mtime_ns, size = plain
        _, kind_name, record_id, parent_id = wire
        kind = KIND_NAMED[kind_name]
        clean = parsed_cleanly(kind, record_id, parent_id, data, config)
        if not isinstance(clean, tuple):  # decided by the reader's rules, not parsed again
            stamp = FileStamp(mtime_ns, size)
            read = read_unclean(from_wire(wire), data, stamp, config, config.first_read, clean)
            outcomes.append(_outcome(read, sources))
            continue
        digest, table, owner, rows = clean
        start, count = _add_rows(sources, kind, table, rows)
        outcomes.append((indexed, mtime_ns, size, digest, None, retry_in_s, owner, start, count))
    return outcomes, _tables(sources)


def _outcome(read: FileRead, sources: dict[FileKind, list[Source]]) -> Outcome:
    """One read as a worker sends it; its rows' sources go to its kind's."""
    stamp, parsed = read.stamp, read.parsed
    owner, start, count = None, 0, 0
    if parsed is not None:
        owner = parsed.owner_id
        start, count = _add_rows(sources, read.key.kind, parsed.table, parsed.sources)
    return (
        read.status.value,
        stamp.mtime_ns if stamp is not None else None,
        stamp.size if stamp is not None else None,
        read.content_hash,
        read.message,
        read.retry_in_s,
        owner,
        start,
        count,
    )


def _add_rows(
    sources: dict[FileKind, list[Source]], kind: FileKind, table: Table, rows: Sequence[Source]
) -> tuple[int, int]:
    """Where a file's rows start in its kind's table, and how many there are."""
    if table.build is None or not rows:
        return 0, 0
    mine = sources.setdefault(kind, [])
    start = len(mine)
    mine.extend(rows)
    return start, len(rows)


def _tables(sources: dict[FileKind, list[Source]]) -> dict[str, pa.Table]:
    tables = {}
    for kind, rows in sources.items():
        table = SPECS[kind].table
        assert table.build is not None
        tables[str(kind)] = columns_to_arrow(table, table.build(rows))
    return tables


def serve(tasks: Connection, answers: Connection) -> None:
    """Say this process's pid (it is up), then answer every task until the task pipe closes. A
    task that raises (a bug: reading never raises for a file's fault) is answered with its
    traceback, and the worker goes on."""
    try:
        answers.send(os.getpid())
    except (BrokenPipeError, OSError):
        return
    while True:
        try:
            root, keys, config = tasks.recv()
        except EOFError:
            return
        try:
            answer: tuple[str, object] = ("ok", read_task(root, keys, config))
        except Exception:
            answer = ("failed", traceback.format_exc(limit=5))
        try:
            answers.send(answer)
        except (BrokenPipeError, OSError):
            return  # the parent is gone


Pipes = tuple[int, int]
"""A worker's two inherited descriptors: the task pipe's read end, the answer pipe's write end."""


def fork_siblings(pipes: Sequence[Pipes]) -> Pipes:
    """This process's pipes (the first pair), after forking one process for each other pair,
    which gets that pair: the imports done once serve every worker. Each process keeps only its
    own descriptors. The kernel reaps the siblings (SIGCHLD is ignored), and this process ends
    after them (_wait_for_siblings), unless it is killed."""
    mine = pipes[0]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for pair in pipes[1:]:
        if os.fork() == 0:
            mine = pair
            break
    for pair in pipes:
        if pair != mine:
            os.close(pair[0])
            os.close(pair[1])
    return mine


def main(argv: Sequence[str]) -> int:
    fds = [int(arg) for arg in argv]
    collect_less()  # before the fork: the frozen imports stay shared, never traversed
    tasks_fd, answers_fd = fork_siblings(list(zip(fds[::2], fds[1::2], strict=True)))
    tasks = Connection(tasks_fd, writable=False)
    answers = Connection(answers_fd, readable=False)
    os.dup2(2, 1)  # whatever prints goes to stderr, never into the answers
    # What a read found travels in its answer; the parent reads a failure again and logs it.
    logging.disable(logging.CRITICAL)
    # Ctrl-C reaches the whole process group: the parent decides, and its pipe ends this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(tasks, answers)
    _wait_for_siblings()
    return 0


def _wait_for_siblings() -> None:
    """Return once every process this one forked has ended (none in a forked one): the pool
    that reaps this process then knows its siblings are gone too."""
    try:
        while True:
            os.wait()  # with SIGCHLD ignored: blocks until none is left, then ECHILD
    except ChildProcessError:
        return


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()  # into stderr (main): nothing printed is lost to the _exit
    sys.stderr.flush()
    # Nothing of a worker needs tearing down; Python's teardown of pyarrow and the rest took
    # ~30 ms that the indexer's stop waited for (ReadPool.close).
    os._exit(code)
