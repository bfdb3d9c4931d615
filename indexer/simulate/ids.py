"""OpenCode-shaped ids (msg_, ses_, evt_, ...) for records the writers add beyond the story's,
minted from a seeded generator and the virtual clock. Never touches a database."""

from __future__ import annotations

import random

from indexer.simulate.vocabulary import BASE62

MASK48 = (1 << 48) - 1


class IdMint:
    """6 bytes of (ms * 4096 + counter), NOTed for sessions, then 14 base62 characters: ids
    ascend with the clock as OpenCode's do. One thread at a time."""

    def __init__(self, seed: str) -> None:
        self._rng = random.Random(seed)
        self._ms, self._count = -1, 0

    def mint(self, prefix: str, now_ms: int, descending: bool = False) -> str:
        if now_ms != self._ms:
            self._ms, self._count = now_ms, 0
        self._count += 1
        value = (now_ms * 4096 + self._count) & MASK48
        if descending:
            value = ~value & MASK48
        return f"{prefix}_{value:012x}{''.join(self._rng.choices(BASE62, k=14))}"
