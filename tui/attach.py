"""Attach mode: the dashboard as a client of the ocindex process that holds the database, its
header saying so and its keys dimmed while that process is gone. Never calls the engine itself:
the app's workers do, through indexer.live.remote.RemoteService.
"""

from __future__ import annotations

from typing import Any, Protocol

from textual import on
from textual.events import Key

from indexer.live.remote import Link
from indexer.snapshot import IndexerFacade
from tui import keys
from tui.app import OcindexApp
from tui.intent import KnowsRolloutThreshold
from tui.messages import RetryRequested, SnapshotFailed, SnapshotReady
from tui.panes.header import StatusHeader

IN_PROCESS_ONLY: dict[str, str] = {}
"""App actions that need the engine inside this process (a demo writer it runs, a trial on its
own pipeline), with the reason shown when they are dimmed in attach mode. Every action of the
dashboard's facade works attached; an action added to tui/keys.py that calls something else of
the in-process engine belongs here."""


class Remote(IndexerFacade, KnowsRolloutThreshold, Protocol):
    """What the attached dashboard asks of its facade (indexer.live.remote.RemoteService)."""

    def link(self) -> Link: ...


class AttachedApp(OcindexApp):
    """The dashboard over an engine in another process: the same panes and keys, the header's
    badge naming the process, mutating keys dimmed (with the reason) while it does not answer."""

    def __init__(self, remote: Remote, **kwargs: Any) -> None:
        super().__init__(remote, **kwargs)
        self._remote = remote
        self._link: Link | None = None

    def on_mount(self) -> None:
        # OcindexApp.on_mount runs too: Textual calls the handler of every class in the MRO.
        self._show_link()

    @on(SnapshotReady)
    @on(SnapshotFailed)
    def _link_changed(self) -> None:
        if not self._closing_down():
            self._show_link()

    def _show_link(self) -> None:
        link = self._remote.link()
        previous, self._link = self._link, link
        header = self.main.query_one(StatusHeader)
        header.attached = link.header
        header.detached = not link.connected
        if previous is None or (previous.connected, previous.pid) == (link.connected, link.pid):
            return
        self.refresh_bindings()
        if link.connected:
            self.notify(link.explained, title="Attached again")
        else:
            self.notify(link.explained, title="Detached", severity="warning")

    def _detached_reason(self) -> str:
        link = self._link
        if link is None or link.connected:
            return ""
        return f"{link.header}: its keys act again once it answers"

    @on(RetryRequested)
    def _retry_while_detached(self, message: RetryRequested) -> None:
        """`R` in pane 4 says why it does nothing while the process is gone (OcindexApp's own
        handler, which would send the retry, is skipped)."""
        reason = self._detached_reason()
        if reason:
            message.prevent_default()
            self.notify(reason, title="Retry", severity="warning")

    def why_unavailable(self, action: str, parameters: tuple[object, ...] = ()) -> str:
        link = self._link
        detached = self._detached_reason()
        if detached:
            return detached
        reason = IN_PROCESS_ONLY.get(action)
        if reason:
            return f"attached to {link.label if link else 'another process'}: {reason}"
        return super().why_unavailable(action, parameters)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in IN_PROCESS_ONLY and action not in keys.MUTATIONS:
            return None
        return super().check_action(action, parameters)

    def on_key(self, event: Key) -> None:
        """A key dimmed because it needs the engine in this process says why (the mutating
        keys are explained by OcindexApp.on_key, which runs after this)."""
        for key in keys.in_scope("app"):
            if key.key == event.key and key.action_name in IN_PROCESS_ONLY:
                if key.action_name not in keys.MUTATIONS:
                    reason = self.why_unavailable(key.action_name, key.parameters)
                    self.notify(reason, title=f"{key.label} ({key.shown_key})", severity="warning")
                    event.stop()
                return
