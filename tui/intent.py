"""What a key would do, in plain words: why a key cannot act now, what a rollout step changes for
this install, the confirmation texts and the toasts. Pure functions; never calls the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from indexer.snapshot import ActionResult, IndexerSnapshot
from indexer.status import V1_NOTE
from tui import format as fmt

ROLLOUT_STEP = 10


@runtime_checkable
class KnowsRolloutThreshold(Protocol):
    """An engine that can say from which rollout this install runs v2 (IndexerService does)."""

    def rollout_threshold(self) -> int | None: ...


def unavailable(action: str, delta: int, snap: IndexerSnapshot | None, busy: str) -> str:
    """Why the engine-changing `action` cannot act now, in a sentence; '' when it can."""
    if busy:
        return f"wait: {busy} is still running, and one change runs at a time"
    if action in ("flush", "rescan"):
        return ""
    if snap is None:
        return "wait: the engine has not answered yet"
    if action == "rollback" and snap.active == "v1" and snap.rollout_percent == 0:
        return "nothing to roll back: v1 is active and the v2 rollout is already 0%"
    if action == "rollout":
        target = min(100, max(0, snap.rollout_percent + delta))
        if target == snap.rollout_percent:
            edge = "100%: every install" if delta > 0 else "0%: no install"
            return f"the v2 rollout is already {edge} runs v2 by the rollout"
    return ""


@dataclass(frozen=True)
class RolloutStep:
    """A `+`/`-` press spelled out before it is applied."""

    target: int
    version: str
    """The indexer this install runs at `target`."""
    title: str
    body: str
    confirm: str
    toast: str
    """What the toast says once the step is applied."""


def where_it_moves(threshold: int | None) -> str:
    if threshold is None:
        return (
            "UNIFIED_INDEXER_V2_ENABLED pins this install's indexer; the rollout does not move it"
        )
    return f"this install runs v2 from a rollout of {threshold}% and up"


def rollout_step(snap: IndexerSnapshot, delta: int, threshold: int | None) -> RolloutStep:
    """What setting the rollout to its current value + delta does to this install."""
    target = min(100, max(0, snap.rollout_percent + delta))
    now = snap.rollout_percent
    version = snap.active if threshold is None else "v2" if target >= threshold else "v1"
    where = where_it_moves(threshold)
    share = f"The v2 rollout goes from {now}% to {target}% of installs"
    if version != snap.active:
        body = f"{share}. {where[0].upper()}{where[1:]}, so the active indexer changes now:"
        body += f" {snap.active} stops and {version} takes over its waiting files."
        if version == "v1":
            body += f" {V1_NOTE}."
        return RolloutStep(
            target,
            version,
            f"Rollout {target}%: switch to {version}?",
            body,
            f"Set {target}% and switch",
            f"Rollout {target}%: {version} is now active.",
        )
    body = f"{share}. {where[0].upper()}{where[1:]}: {snap.active} stays active, nothing stops."
    return RolloutStep(
        target,
        version,
        f"Set the rollout to {target}%?",
        body,
        f"Set {target}%",
        f"Rollout {target}%: this install stays on {version} ({where}).",
    )


def switch_body(active: str, target: str) -> str:
    body = (
        f"The active indexer is {active}. Both write the same tables, so nothing is "
        "re-indexed; files waiting in its batch are handed over."
    )
    if target == "v1":
        body += f" {V1_NOTE} (rows indexed so far stay)."
    return body


def rollback_body(snap: IndexerSnapshot) -> str:
    body = (
        f"Now: {snap.active} active, v2 rollout {fmt.percent(snap.rollout_percent)}. "
        "Roll back to the legacy v1 indexer and set the v2 rollout to 0%? A restart stays on v1."
    )
    return f"{body} {V1_NOTE}."


def toast(result: ActionResult, planned: str = "") -> tuple[str, str]:
    """(title, text) of the toast for a finished action: the planned plain sentence when it
    worked, the engine's own words when it did not."""
    title = result.action.replace("_", " ").capitalize()
    if not result.ok:
        return title, result.message or "failed"
    text = planned or result.message or "done"
    if not text.startswith(("v1", "v2")):  # the indexers' names stay lower case
        text = text[0].upper() + text[1:]
    return title, text
