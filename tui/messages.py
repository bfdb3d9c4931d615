"""The messages that carry engine results from worker threads, and pane requests, to the app.
Never calls the engine or touches a widget: these are plain values posted between threads.
"""

from __future__ import annotations

from textual.message import Message

from indexer.snapshot import ActionResult, Comparison, ErrorFile, IndexerSnapshot


class SnapshotReady(Message):
    """The poller took a fresh snapshot; a newer one replaces an older one still queued."""

    def __init__(self, snapshot: IndexerSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady) and (
            message.snapshot.taken_at >= self.snapshot.taken_at
        )


class SnapshotFailed(Message):
    """The poller could not take a snapshot; `error` is one line for the user."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady | SnapshotFailed)


class ActionFinished(Message):
    """A keyboard action (flush, rescan, switch, rollback, rollout, retry) came back."""

    def __init__(self, result: ActionResult) -> None:
        super().__init__()
        self.result = result


class ComparisonReady(Message):
    """The A/B figures arrived from the engine."""

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison


class ComparisonFailed(Message):
    """The A/B figures could not be computed; `error` is one line for the user."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ErrorChosen(Message):
    """The user asked to see one error file in full."""

    def __init__(self, error: ErrorFile) -> None:
        super().__init__()
        self.error = error


class RetryRequested(Message):
    """The user asked the engine to retry one error file."""

    def __init__(self, rel_path: str) -> None:
        super().__init__()
        self.rel_path = rel_path
