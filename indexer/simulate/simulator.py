"""The simulators: a SessionStory played into a writer (JSON files or an OpenCode SQLite store),
at full speed or at a rate. Never imports the indexing pipeline or touches the index database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from indexer.simulate.faults import FaultInjector
from indexer.simulate.json_writer import JsonWriter
from indexer.simulate.migration import UpgradeWriter
from indexer.simulate.report import SimulationReport, Tally
from indexer.simulate.sqlite_writer import SqliteWriter
from indexer.simulate.store_schemas import GENERATIONS
from indexer.simulate.story import CLOCK_START_MS, Op, SessionStory, Settled
from indexer.simulate.v2_writer import V2Writer


class Writer(Protocol):
    """Where the story's writes land."""

    tally: Tally

    def write(self, rel: str, data: bytes, now_ms: int) -> None: ...

    def settle(self, rel_paths: tuple[str, ...]) -> None: ...

    def expected_files(self) -> dict[str, bytes]: ...


class Simulator:
    """Plays OpenCode sessions into a writer: all content comes from one seeded story, so the
    same seed writes the same bytes in the same order. One call runs at a time;
    expected_files() may be called from any thread while it runs."""

    def __init__(
        self,
        writer: Writer,
        seed: int = 0,
        faults: bool = False,
        clock_start_ms: int = CLOCK_START_MS,
    ) -> None:
        self._story = SessionStory(seed, clock_start_ms)
        self._writer = writer
        self._tally = writer.tally
        self._faults: FaultInjector | None = None
        if faults:
            if not isinstance(writer, JsonWriter):
                raise ValueError("faults apply to JSON files only")
            self._faults = FaultInjector(seed, self._story, writer)
        self._live: Iterator[None] | None = None

    def write_sessions(self, sessions: int) -> SimulationReport:
        """--once mode: write `sessions` whole sessions (with the in-place rewrite sequences) as
        fast as possible and return."""
        started = self._begin(None)
        self._story.budget = self._story.made + sessions
        try:
            for _ in self._steps(self._story.drive()):
                pass
            self._flush()
        finally:
            self._story.budget = None
        return self._report(started)

    def run(
        self,
        rate_files_per_s: float,
        duration_s: float,
        stop: threading.Event | None = None,
        on_write: Callable[[str], None] | None = None,
    ) -> SimulationReport:
        """Live mode: keep writing activity (new sessions, messages, parts streaming, rewrites)
        at about `rate` file writes per second for `duration` seconds or until `stop` is set.
        rate <= 0 means as fast as possible. on_write(rel_path) is called after each write
        completes, and after each deletion (tests use it as a ledger)."""
        started = self._begin(on_write)
        deadline = started + max(duration_s, 0.0)
        if self._live is None:  # later calls carry on with the same sessions
            self._live = self._steps(self._story.drive())
        try:
            while stop is None or not stop.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                if rate_files_per_s > 0:  # sleep only to hold the rate, never per file
                    wait = started + self._tally.writes / rate_files_per_s - now
                    if wait > 0:
                        pause = min(wait, deadline - now)
                        if stop is not None:
                            stop.wait(pause)
                        else:
                            time.sleep(pause)
                        continue
                next(self._live)
            self._flush()
        finally:
            self._tally.on_write = None
        return self._report(started)

    def expected_files(self) -> dict[str, bytes]:
        """rel_path -> final bytes of every file that should exist now (the ledger of the last
        write of each file that was not deleted), so tests can compare the index with the truth."""
        return self._writer.expected_files()

    def _begin(self, on_write: Callable[[str], None] | None) -> float:
        self._tally.reset(on_write)
        return time.monotonic()

    def _report(self, started: float) -> SimulationReport:
        return self._tally.report(round(time.monotonic() - started, 6))

    def _steps(self, ops: Iterator[Op]) -> Iterator[None]:
        """Land the story's operations; yields after each write it hands on."""
        for op in ops:
            if isinstance(op, Settled):
                if self._faults is not None:
                    self._faults.settle(op.rel_paths)
                self._writer.settle(op.rel_paths)
            elif self._faults is not None:
                self._faults.apply(op.rel_path, op.data)
                yield
            else:
                self._writer.write(op.rel_path, op.data, self._story.now_ms)
                yield

    def _flush(self) -> None:
        if self._faults is not None:
            self._faults.flush(everything=True)


class OpenCodeSimulator(Simulator):
    """JSON files under `root`, as OpenCode ≤ 1.1 wrote them; with `faults`, some writes torn,
    broken or deleted (see faults.py)."""

    def __init__(
        self,
        root: Path,
        seed: int = 0,
        faults: bool = False,
        clock_start_ms: int = CLOCK_START_MS,
    ) -> None:
        super().__init__(JsonWriter(root), seed=seed, faults=faults, clock_start_ms=clock_start_ms)


class SqliteSimulator(Simulator):
    """The same sessions in an OpenCode SQLite store (db_path, by default opencode.db beside
    `root`); session_diff files stay JSON under the root. `generation`:
    - "1.2": 1.2's tables, written as SqliteWriter describes (the default);
    - "1.18": plus switch rows in session_message, the event log, session rollups;
    - "2.x": a fresh 2.x file (session_v2, session_message rows updated in place, forks...);
    - "upgraded": 1.18 history, then V1Migration (`migrated` share of the sessions: below 1 the
      kv cursor stays at phase "sessions"), one migrated session deleted in 2.x, then 2.x writes.

    on_write(key) gets `<table>/<id>` for a row, `session_diff/<id>.json` for a file.
    """

    def __init__(
        self,
        root: Path,
        seed: int = 0,
        db_path: Path | None = None,
        delete_share: float = 0.2,
        checkpoint_every: int = 200,
        clock_start_ms: int = CLOCK_START_MS,
        generation: str = "1.2",
        migrated: float = 0.6,
    ) -> None:
        if generation not in GENERATIONS:
            raise ValueError(f"generation must be one of {', '.join(GENERATIONS)}")
        self.generation = generation
        args = (root, seed, db_path, delete_share, checkpoint_every)
        self._store: SqliteWriter | V2Writer | UpgradeWriter
        if generation in ("1.2", "1.18"):
            self._store = SqliteWriter(*args, generation=generation)
        elif generation == "2.x":
            self._store = V2Writer(*args)
        else:
            self._store = UpgradeWriter(*args, share=migrated)
        super().__init__(self._store, seed=seed, clock_start_ms=clock_start_ms)
        self.db_path = self._store.db_path
        self.deleted_sessions = self._store.deleted_sessions

    def write_sessions(self, sessions: int) -> SimulationReport:
        """As Simulator's; "upgraded" first writes about two thirds of them as 1.18 history
        and migrates, the rest as 2.x."""
        if not isinstance(self._store, UpgradeWriter) or self._store.v2 is not None:
            return super().write_sessions(sessions)
        history = super().write_sessions(max(1, sessions * 2 // 3))
        self._store.upgrade(self._story.now_ms)
        rest = super().write_sessions(sessions - max(1, sessions * 2 // 3))
        return SimulationReport(
            history.files_written + rest.files_written,
            history.writes + rest.writes,
            history.rewrites + rest.rewrites,
            history.deleted + rest.deleted,
            (),
            round(history.seconds + rest.seconds, 6),
        )

    def run(
        self,
        rate_files_per_s: float,
        duration_s: float,
        stop: threading.Event | None = None,
        on_write: Callable[[str], None] | None = None,
    ) -> SimulationReport:
        """As Simulator's; "upgraded" writes three sessions of 1.18 history and migrates first."""
        if isinstance(self._store, UpgradeWriter) and self._store.v2 is None:
            super().write_sessions(3)
            self._store.upgrade(self._story.now_ms)
        return super().run(rate_files_per_s, duration_s, stop, on_write)

    @property
    def checkpoints(self) -> int:
        store = self._store
        if isinstance(store, UpgradeWriter):
            return store.v1.checkpoints + (store.v2.checkpoints if store.v2 else 0)
        return store.checkpoints

    @property
    def last_time_updated(self) -> int:
        """time_updated of the latest row write (the benchmark matches commits against it)."""
        store = self._store
        if isinstance(store, UpgradeWriter):
            return (store.v2 or store.v1).last_time_updated
        return store.last_time_updated

    def close(self) -> None:
        """Close the connection (SQLite then checkpoints and removes the -wal, as OpenCode's
        exit does)."""
        self._store.close()

    def __enter__(self) -> SqliteSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def expected_rows(self) -> dict[str, bytes]:
        """`<table>/<id>` -> the JSON of every row that should exist now (a todo key holds the
        session's whole list), so tests can compare the index with the truth."""
        return self._store.expected_rows()

    def delete_session(self, sid: str) -> list[str]:
        """Delete a session and its child sessions as the generation does (1.x: DELETE FROM
        session; 2.x: DELETE FROM session_v2), the rest by cascade; its session_diff file is
        removed too. Returns the deleted session ids."""
        return self._store.delete_session(sid)
