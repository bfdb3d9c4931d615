"""Which JSON writes go wrong when faults are on (torn, broken siblings, settled files deleted),
drawn from their own seeded RNG. Never changes what the story says, only how writes land."""

from __future__ import annotations

import random

import orjson

from indexer.simulate.json_writer import JsonWriter
from indexer.simulate.report import Fault
from indexer.simulate.story import SessionStory
from indexer.simulate.vocabulary import dump

FAULT_RATE = 0.004  # chance per streamed write
FAULT_KINDS = (
    "partial_then_completed",
    "corrupt",
    "empty",
    "invalid_utf8",
    "wrong_top_level",
    "deleted",
)


class FaultInjector:
    """Stands between the story and a JsonWriter; used on the simulating thread only."""

    def __init__(self, seed: int, story: SessionStory, writer: JsonWriter) -> None:
        self._rng = random.Random(f"faults:{seed}")  # fault decisions do not disturb content
        self._story = story
        self._writer = writer
        self._settled: list[str] = []  # files of finished sessions: candidates for deletion
        self._pending: dict[str, tuple[int, bytes]] = {}  # torn file -> (due write no., bytes)
        self._fault_paths: set[str] = set()

    def settle(self, rel_paths: tuple[str, ...]) -> None:
        self._settled.extend(rel_paths)

    def apply(self, rel: str, data: bytes) -> None:
        """Land one of the story's writes, now and then with a fault."""
        self.flush(everything=False)
        self._pending.pop(rel, None)  # a newer write supersedes a torn one
        tally = self._writer.tally
        if self._rng.random() < FAULT_RATE:
            kind = self._rng.choice(FAULT_KINDS)
            if kind == "partial_then_completed" and len(data) > 1:
                # A reader can catch the file torn; the full content lands a few writes later.
                self._write(rel, data[: self._rng.randint(1, len(data) - 1)])
                self._pending[rel] = (tally.writes + self._rng.randint(1, 40), data)
                self._fault_paths.add(rel)
                tally.faults.append(Fault(rel, kind, True))
                return
            if kind == "deleted":
                self._delete_settled_file()
            elif kind != "partial_then_completed":
                self._write_broken_sibling(kind, rel, data)
        self._write(rel, data)

    def flush(self, everything: bool) -> None:
        """Complete the torn writes that are due (all of them with `everything`)."""
        for rel, (due, data) in list(self._pending.items()):
            if everything or due <= self._writer.tally.writes:
                del self._pending[rel]
                self._write(rel, data)

    def _write(self, rel: str, data: bytes) -> None:
        self._writer.write(rel, data, self._story.now_ms)

    def _delete_settled_file(self) -> None:
        while self._settled:
            i = self._rng.randrange(len(self._settled))
            rel = self._settled[i]
            self._settled[i] = self._settled[-1]
            self._settled.pop()
            if rel in self._pending or rel in self._fault_paths or not self._writer.holds(rel):
                continue
            self._writer.delete(rel)
            self._writer.tally.faults.append(Fault(rel, "deleted", False))
            self._writer.tally.removed(rel)
            return

    def _write_broken_sibling(self, kind: str, rel: str, data: bytes) -> None:
        """A permanently broken file next to `rel`, under a fresh id: nothing rewrites it."""
        folder, _, name = rel.rpartition("/")
        stem = name.removesuffix(".json")
        if stem[3:4] != "_":  # project files have no id prefix to mint a sibling from
            return
        new_id = self._story.mint_id(stem[:3], descending=stem.startswith("ses"), rng=self._rng)
        body = data.replace(stem.encode(), new_id.encode())
        if kind == "corrupt":
            body = body[: len(body) // 2]  # a torn write that never completed
        elif kind == "empty":
            body = b""
        elif kind == "invalid_utf8":
            body = body.replace(b'": "', b'": "\xff\xfe', 1) if b'": "' in body else b"\xff" + body
        else:  # wrong_top_level: arrays where objects belong and the other way round
            loaded = orjson.loads(body)
            body = dump({"items": loaded} if isinstance(loaded, list) else [loaded])
        sibling = f"{folder}/{new_id}.json"
        self._write(sibling, body)
        self._fault_paths.add(sibling)
        self._writer.tally.faults.append(Fault(sibling, kind, False))
