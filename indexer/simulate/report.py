"""What one simulator call did: files written, rewrites, deletions and the faults injected.
Never writes anything itself: the writers and the fault injector count into a Tally."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Fault:
    rel_path: str
    kind: str  # one of faults.FAULT_KINDS
    final_valid: bool  # True when the file ends as valid JSON of the right shape


@dataclass(frozen=True)
class SimulationReport:
    files_written: int  # distinct files created by this call
    writes: int  # total write calls, rewrites included
    rewrites: int
    deleted: tuple[str, ...]
    faults: tuple[Fault, ...]
    seconds: float

    def to_dict(self) -> dict[str, object]:
        faults = [asdict(f) for f in self.faults]
        return {**asdict(self), "deleted": list(self.deleted), "faults": faults}


class Tally:
    """The counts of one write_sessions() or run() call, and its on_write listener; reset at the
    start of each call and used only on the simulating thread."""

    def __init__(self) -> None:
        self.reset(None)

    def reset(self, on_write: Callable[[str], None] | None) -> None:
        self.on_write = on_write
        self.created = 0
        self.writes = 0
        self.rewrites = 0
        self.deleted: list[str] = []
        self.faults: list[Fault] = []

    def wrote(self, key: str, new: bool) -> None:
        """Count a write that landed (`new` when it created the file or row) and announce it."""
        self.writes += 1
        if new:
            self.created += 1
        else:
            self.rewrites += 1
        if self.on_write is not None:
            self.on_write(key)

    def removed(self, key: str) -> None:
        """Count a deletion that landed and announce it."""
        self.deleted.append(key)
        if self.on_write is not None:
            self.on_write(key)

    def report(self, seconds: float) -> SimulationReport:
        return SimulationReport(
            self.created,
            self.writes,
            self.rewrites,
            tuple(self.deleted),
            tuple(self.faults),
            seconds,
        )
