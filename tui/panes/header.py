"""The status header (indexer, rollout, RUNNING/PAUSED, rate, totals, last reconcile, DEMO) and
the anomaly banner under it. Never decides anything: it shows the snapshot and the app's state.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from indexer.snapshot import IndexerSnapshot
from tui import format as fmt

TOTALS = ("indexed", "error", "pending", "deleted")


def _total(name: str, n: int) -> Content:
    style = "b $error" if name == "error" and n else "b"
    return Content.from_markup(f"{name} [{style}]$n[/]", n=fmt.count(n))


SOURCES_NOTICE = "sources:"
"""How the engine's line naming its sources starts (IndexerService._sources_line): no warning."""


def status_lines(snapshot: IndexerSnapshot, paused: bool, short: bool = False) -> Content:
    """The left-hand header lines for one snapshot: state, totals, then the storage root and
    the engine's notice; `short` drops that third line when there is no notice."""
    if paused:
        state = "[b reverse $warning] PAUSED [/]"
    elif snapshot.running:
        state = "[b reverse $success] RUNNING [/]"
    else:
        state = "[b reverse $error] STOPPED [/]"
    line1 = Content.from_markup(
        f"[b]ocindex[/b]  [b $accent]$active[/] active · rollout [b]$rollout[/]  {state}  "
        "[b]$rate[/] files/s · queue $queue",
        active=snapshot.active,
        rollout=fmt.percent(snapshot.rollout_percent),
        rate=fmt.number(snapshot.files_per_s),
        queue=fmt.count(snapshot.queue_depth),
    )
    parts = [_total(name, snapshot.totals.get(name, 0)) for name in TOTALS]
    last = snapshot.last_reconcile
    if last is None and snapshot.active == "v1":
        reconcile = Content("reconcile: none (v1 has no reconciler)")
    elif last is None:
        reconcile = Content("reconcile: none yet")
    else:
        reconcile = Content.from_markup(
            "reconciled [b]$when[/]", when=fmt.ago(last.started_at, snapshot.taken_at)
        )
    line2 = Content("  ").join([*parts, reconcile])
    root = fmt.short_root(snapshot.storage_root)
    line3 = Content.from_markup("[dim]storage $root[/]", root=root)
    if short and not snapshot.message:
        return Content("\n").join([line1, line2])
    if snapshot.message:
        # What matters more comes first, a narrow line cuts its end: a warning before the
        # storage path, the path before the line naming the sources.
        info = snapshot.message.startswith(SOURCES_NOTICE)
        markup = (
            "[dim]storage $root ·[/] $message" if info else "[$warning]$message[/]  [dim]· $root[/]"
        )
        line3 = Content.from_markup(markup, message=fmt.one_line(snapshot.message), root=root)
    return Content("\n").join([line1, line2, line3])


class StatusHeader(Horizontal):
    """Top of the main screen: status lines on the left, DEMO and health badges on the right."""

    paused: reactive[bool] = reactive(False)
    busy: reactive[str] = reactive("")
    """The action in flight, '' when none."""
    stale_s: reactive[float] = reactive(0.0)
    """Seconds the shown snapshot is behind the clock; 0 while fresh."""
    poll_error: reactive[str] = reactive("")
    short: reactive[bool] = reactive(False)
    """A short terminal: two lines unless the engine has a notice."""
    attached: reactive[str] = reactive("")
    """'attached to ocindex run (pid N)' while the engine runs in another process (tui/attach.py)."""
    detached: reactive[bool] = reactive(False)
    """That process stopped answering: `attached` says so, in the error colour."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._snapshot: IndexerSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield Static("[b]ocindex[/b]  waiting for the first snapshot…", id="header-main")
        yield Static("", id="header-badges")

    def show(self, snapshot: IndexerSnapshot) -> None:
        self._snapshot = snapshot
        self._update()

    def watch_paused(self) -> None:
        self._update()

    def watch_busy(self) -> None:
        self._update()

    def watch_stale_s(self) -> None:
        self._update()

    def watch_poll_error(self) -> None:
        self._update()

    def watch_short(self) -> None:
        self._update()

    def watch_attached(self) -> None:
        self._update()

    def watch_detached(self) -> None:
        self._update()

    def _update(self) -> None:
        if not self.is_mounted:
            return
        snap = self._snapshot
        if snap is not None:
            self.query_one("#header-main", Static).update(
                status_lines(snap, self.paused, self.short)
            )
            self.styles.height = 2 if self.short and not snap.message else 3
        badges: list[Content] = []
        if self.attached:
            style = "b $error" if self.detached else "b $accent"
            badges.append(Content.from_markup(f"[{style}]$a[/]", a=fmt.fit(self.attached, 46)))
        if snap is not None and snap.demo:
            badges.append(Content.from_markup("[b reverse $accent] DEMO [/]"))
        if self.busy:
            badges.append(Content.from_markup("[$accent]⟳ $busy…[/]", busy=self.busy))
        if self.poll_error:
            badges.append(
                Content.from_markup(
                    "[$error]snapshot failed: $e[/]", e=fmt.fit(self.poll_error, 40)
                )
            )
        elif self.stale_s and not self.paused:
            badges.append(
                Content.from_markup("[$warning]no update for $s[/]", s=fmt.duration(self.stale_s))
            )
        self.query_one("#header-badges", Static).update(Content("\n").join(badges))


class AlertBanner(Static):
    """A warning bar shown only while the engine reports an anomaly."""

    def show(self, snapshot: IndexerSnapshot) -> None:
        alert = snapshot.alert
        self.display = alert is not None
        if alert is not None:
            self.update(Content.from_markup("[b]⚠ ALERT[/b]  $line", line=fmt.alert_line(alert)))
