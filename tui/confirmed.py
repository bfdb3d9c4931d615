"""The keys that change which indexer runs (`v` switch, `b` rollback, `+`/`-` rollout): each says
what it will do in a confirmation first. Never calls the engine on the UI thread: the app's
action worker does, once the answer is yes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from textual.screen import Screen

from indexer.snapshot import ActionResult, IndexerFacade, IndexerSnapshot
from tui import format as fmt
from tui import intent
from tui.screens.confirm import ConfirmScreen


class Dashboard(Protocol):
    """What the confirmed actions need of tui.app.OcindexApp."""

    latest: IndexerSnapshot | None

    @property
    def facade(self) -> IndexerFacade: ...

    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None]) -> object: ...

    def _start_action(
        self, name: str, call: Callable[[], ActionResult], planned: str = ""
    ) -> None: ...


class ConfirmedActions:
    """Mixed into the app: one action per key, each behind a ConfirmScreen."""

    def action_switch(self: Dashboard) -> None:
        snap = self.latest
        if snap is None:
            return
        target = "v2" if snap.active == "v1" else "v1"
        call = partial(self.facade.switch_to, target, reason="dashboard: v key")
        _confirm(
            self,
            ConfirmScreen(
                f"Switch to {target}?",
                intent.switch_body(snap.active, target),
                f"Switch to {target}",
            ),
            "switch",
            call,
        )

    def action_rollback(self: Dashboard) -> None:
        snap = self.latest
        if snap is None:
            return
        reason = "dashboard: b key"
        if snap.alert is not None:
            reason = f"dashboard: b key on alert: {fmt.alert_line(snap.alert)}"
        screen = ConfirmScreen("Roll back to v1?", intent.rollback_body(snap), "Roll back")
        call = partial(self.facade.rollback, reason=reason)
        _confirm(self, screen, "rollback", call, "v1 is now active; the v2 rollout is 0%.")

    def action_rollout(self: Dashboard, delta: int) -> None:
        snap = self.latest
        if snap is None:
            return
        facade = self.facade
        threshold = (
            facade.rollout_threshold() if isinstance(facade, intent.KnowsRolloutThreshold) else None
        )
        step = intent.rollout_step(snap, delta, threshold)
        screen = ConfirmScreen(step.title, step.body, step.confirm)
        _confirm(self, screen, "rollout", partial(facade.set_rollout, step.target), step.toast)


def _confirm(
    app: Dashboard,
    screen: ConfirmScreen,
    name: str,
    call: Callable[[], ActionResult],
    planned: str = "",
) -> None:
    """Push `screen`; run `call` as action `name` only if the answer is yes."""

    def answered(yes: bool | None) -> None:
        if yes:
            app._start_action(name, call, planned)

    app.push_screen(screen, answered)
