"""AttachedApp recording every toast it sends: Textual drops a toast from app._notifications
when it expires, which a loaded machine can reach before a test looks."""

from __future__ import annotations

from typing import Any

from tui.attach import AttachedApp


class ToastsKept(AttachedApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.toasts: list[tuple[str, str]] = []
        """(title, message) of every toast, in order."""

    def notify(self, message: str, *, title: str = "", **kwargs: Any) -> None:
        self.toasts.append((title, message))
        super().notify(message, title=title, **kwargs)

    def titles(self) -> list[str]:
        return [title for title, _ in self.toasts]

    def messages(self) -> list[str]:
        return [message for _, message in self.toasts]
