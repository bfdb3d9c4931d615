"""Every key of the dashboard, defined once: the footer, the command palette and the help screen's
key table are derived from this registry. Never acts on a key: the owners of `scope` do that.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding, BindingType

Scope = Literal[
    "app",
    "error_table",
    "error_detail",
    "ab",
    "trial_pick",
    "trial",
    "confirm",
    "help",
    "logs",
    "filter_bar",
    "usage",
    "console",
    "console_input",
    "textual",
]
"""Who binds the key: the app, a widget or a screen; "textual" keys are Textual's own and are
listed only in the help."""

PANE_GROUP = Binding.Group("Pane", compact=True)
FIND_GROUP = Binding.Group("Find", compact=True)
ROLLOUT_GROUP = Binding.Group("Rollout", compact=True)
HISTORY_GROUP = Binding.Group("History", compact=True)

KEY_TABLE_MARKER = "<!-- the key table, generated from tui/keys.py -->"
"""The line of assets/help.md that `with_key_table` replaces by the table of keys."""


@dataclass(frozen=True)
class Key:
    """One binding: what the footer shows, what the palette lists and what the help says."""

    id: str
    key: str
    action: str
    label: str
    """The footer's description; also the palette title unless `command` names one."""
    scope: Scope
    display: str | None = None
    """How the key is written when its Textual name is not what the user types ("plus")."""
    group: Binding.Group | None = None
    show: bool = True
    """False: bound but not listed in the footer."""
    mutates: bool = False
    """The action asks the engine to change state (at most one runs at a time)."""
    palette: str = ""
    """The command palette's help line; empty: not offered in the palette."""
    command: str = ""
    """The palette title when it differs from `label`."""
    manual: str = ""
    """This key's row in the help screen's key table; empty: no row of its own."""
    manual_keys: str = ""
    """The row's key column when the row stands for several keys."""

    @property
    def shown_key(self) -> str:
        return self.display or self.key

    @property
    def action_name(self) -> str:
        """The action without its arguments: "rollout" for "rollout(10)"."""
        return self.action.partition("(")[0]

    @property
    def parameters(self) -> tuple[object, ...]:
        """The action's arguments: (10,) for "rollout(10)"."""
        _name, paren, rest = self.action.partition("(")
        if not paren or not rest.rstrip(")"):
            return ()
        value = ast.literal_eval(f"({rest.rstrip(')')},)")
        return tuple(value) if isinstance(value, tuple) else (value,)

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.label,
            show=self.show,
            key_display=self.display,
            id=self.id,
            group=self.group,
        )

    def table_row(self) -> str:
        column = self.manual_keys or f"`{self.shown_key}`"
        return f"| {column} | {self.manual} |"


def _focus(digit: int, pane: str, label: str) -> tuple[Key, Key]:
    """The digit that focuses a pane, and its unlisted twin for narrow terminals."""
    listed = Key(
        f"focus_{pane}",
        str(digit),
        f"focus_pane({digit})",
        label,
        "app",
        group=PANE_GROUP,
        palette=f"Move the keyboard focus to the {pane} pane",
        manual="Focus a pane (its digit is in its title)" if digit == 1 else "",
        manual_keys="`1` `2` `3` `4`",
    )
    # In a narrow terminal (tui.app.NARROW_BELOW) the unlisted twin takes the digit, so the
    # footer keeps its room for the action keys; each pane's border title still shows its digit.
    narrow = Key(f"focus_{pane}_narrow", str(digit), f"pane({digit})", label, "app", show=False)
    return listed, narrow


def _wide_only(listed: Key) -> tuple[Key, Key]:
    """A key the footer lists only in a wide terminal, and its unlisted twin for narrow ones
    (tui.app.NARROW_BELOW): the key works at every width, the footer keeps its room."""
    twin = Key(
        f"{listed.id}_narrow",
        listed.key,
        f"narrow('{listed.action}')",
        listed.label,
        "app",
        display=listed.display,
        show=False,
    )
    return listed, twin


_WIDE_ONLY = (
    _wide_only(
        Key(
            "filter",
            "slash",
            "filter",
            "Filter",
            "app",
            display="/",
            group=FIND_GROUP,
            palette="Show only the rows of the focused list that contain a word",
            manual="**Filter** the focused list (pane 1, pane 3's files, pane 4) by a word "
            "(`enter` keeps it, `esc` clears it); `s` sorts it by its next column",
            manual_keys="`/` / `s`",
        )
    ),
    _wide_only(
        Key(
            "sort",
            "s",
            "sort",
            "Sort",
            "app",
            group=FIND_GROUP,
            palette="Sort the focused list by its next column",
        )
    ),
    _wide_only(
        Key(
            "copy_path",
            "y",
            "copy_path",
            "Copy",
            "app",
            group=FIND_GROUP,
            palette="Copy the selected row's path (pane 1, pane 3's files, pane 4) to the clipboard",
            manual="**Copy** the selected row's path to the clipboard (a SQLite row: its key); "
            "`o` **opens** its file in `$PAGER` (a SQLite row as JSON)",
            manual_keys="`y` / `o`",
        )
    ),
    _wide_only(
        Key(
            "open_row",
            "o",
            "open_row",
            "Open",
            "app",
            group=FIND_GROUP,
            palette="Open the selected row's file in $PAGER (a SQLite row as JSON)",
        )
    ),
    _wide_only(
        Key(
            "logs",
            "l",
            "logs",
            "Logs",
            "app",
            palette="The log of this session, live, with levels and a filter",
            manual="**Logs**: this session's log lines, live; `w` cycles the lowest level shown, "
            "`/` filters, `f` stops or resumes following the newest",
        )
    ),
)
WIDE_ONLY = frozenset(listed.action for listed, _twin in _WIDE_ONLY)
"""Actions the footer lists only in a wide terminal (their twins act in a narrow one)."""

_FOCUS = (
    _focus(1, "pending", "Pending"),
    _focus(2, "latency", "Latency"),
    _focus(3, "findings", "Reconciler"),
    _focus(4, "errors", "Errors"),
)

KEYS: tuple[Key, ...] = (
    Key(
        "flush",
        "f",
        "flush",
        "Flush",
        "app",
        mutates=True,
        palette="Commit the open batch now",
        manual="**Flush**: commit the open batch now instead of waiting for its window",
    ),
    Key(
        "rescan",
        "r",
        "rescan",
        "Rescan",
        "app",
        mutates=True,
        palette="Run a full reconcile scan now",
        manual="**Rescan**: run a full reconcile scan now",
    ),
    Key(
        "switch",
        "v",
        "switch",
        "Switch",
        "app",
        mutates=True,
        palette="Switch the active indexer between v1 and v2 (asks first)",
        manual="**Switch** the active indexer v1 ⇄ v2 (asks first; no re-index is needed)",
    ),
    Key(
        "rollback",
        "b",
        "rollback",
        "Rollback",
        "app",
        mutates=True,
        palette="Roll back to v1 at 0% rollout (asks first)",
        manual="**Rollback**: back to v1 with the v2 rollout at 0% "
        "(asks first; dimmed when already there)",
    ),
    Key(
        "rollout_up",
        "plus",
        "rollout(10)",
        "Rollout +10%",
        "app",
        display="+",
        group=ROLLOUT_GROUP,
        mutates=True,
        palette="Route 10% more files to v2",
        manual="Rollout **±10%** (between 0% and 100%)",
        manual_keys="`+` / `-`",
    ),
    Key(
        "rollout_down",
        "minus",
        "rollout(-10)",
        "Rollout -10%",
        "app",
        display="-",
        group=ROLLOUT_GROUP,
        mutates=True,
        palette="Route 10% fewer files to v2",
    ),
    Key(
        "pause",
        "p",
        "pause",
        "Pause",
        "app",
        palette="Freeze the screen; the engine keeps indexing",
        manual="**Pause** / resume the live refresh; the engine keeps indexing meanwhile",
    ),
    Key("resume", "p", "resume", "Resume", "app", palette="Resume the live refresh"),
    Key(
        "ab",
        "a",
        "ab",
        "A/B",
        "app",
        palette="Compare v1 and v2 side by side",
        manual="**A/B** view: v1 and v2 side by side over windows of live history; there `t` "
        "runs a **trial**: one generated workload through v1, then v2, each on scratch data "
        "while the live indexer keeps running (`esc` cancels it); `a` or `esc` closes the view",
    ),
    # u and c are not in the footer, full at 80 and 120 columns; the help and palette list them
    Key(
        "usage",
        "u",
        "usage",
        "Usage",
        "app",
        show=False,
        palette="Tokens and cost per day by model, the costliest sessions, the failing tools",
        manual="**Usage**: tokens and cost per day by model, the costliest sessions and the "
        "failing tools, refreshed as batches commit; `u` or `esc` closes it",
    ),
    Key(
        "console",
        "c",
        "console",
        "SQL",
        "app",
        show=False,
        palette="Read-only SQL on the index, with the views and their columns",
        manual="**SQL console**: read-only queries on the index (first 1,000 rows, 10 s at "
        "most), the views and their columns beside, `↑`/`↓` history; `esc` closes it",
    ),
    Key(
        "help",
        "question_mark",
        "help",
        "Help",
        "app",
        display="?",
        palette="Keys, panes and how to read the histogram",
        manual="This help; `esc` closes it",
    ),
    Key(
        "quit",
        "q",
        "quit",
        "Quit",
        "app",
        palette="Leave the dashboard; its indexer stops cleanly (attached: the daemon goes on)",
        manual="**Quit**; the indexer flushes and stops (attached, only the dashboard leaves)",
    ),
    *(listed for listed, _twin in _WIDE_ONLY),
    *(twin for _listed, twin in _WIDE_ONLY),
    *(listed for listed, _narrow in _FOCUS),
    *(narrow for _listed, narrow in _FOCUS),
    Key(
        "focus_next",
        "tab",
        "focus_next",
        "Focus next",
        "textual",
        manual="Move the focus between panes",
        manual_keys="`tab` / `shift+tab`",
    ),
    Key(
        "error_detail",
        "enter",
        "select_cursor",
        "Details",
        "error_table",
        palette="Show the full message of the selected error file",
        command="Error details",
        manual="In pane 4: show the selected error file in full",
    ),
    Key(
        "retry",
        "R",
        "retry",
        "Retry",
        "error_table",
        display="R",
        mutates=True,
        palette="Ask the engine to index the selected error file again",
        command="Retry error file",
        manual="In pane 4 and in the error window: retry the selected file",
    ),
    Key(
        "command_palette",
        "ctrl+p",
        "command_palette",
        "Palette",
        "textual",
        manual="Command palette: every action above, searchable",
    ),
    Key("detail_close", "escape", "close", "Close", "error_detail"),
    Key("detail_retry", "R", "retry", "Retry", "error_detail", display="R", mutates=True),
    Key("ab_close", "escape", "close", "Close", "ab"),
    Key("ab_toggle", "a", "close_ab", "Close A/B", "ab"),
    Key("ab_trial", "t", "trial", "Trial", "ab"),
    Key("ab_quit", "q", "app.quit", "Quit", "ab"),
    Key("trial_pick_cancel", "escape", "cancel", "Cancel", "trial_pick"),
    Key("trial_cancel", "escape", "cancel", "Cancel trial", "trial"),
    Key("trial_close", "escape", "close", "Close", "trial"),
    Key("confirm_yes", "y", "answer(True)", "Yes", "confirm"),
    Key("confirm_no", "n", "answer(False)", "No", "confirm"),
    Key("confirm_cancel", "escape", "cancel", "Cancel", "confirm"),
    Key("help_close", "escape", "close", "Close", "help"),
    Key("logs_close", "escape", "close", "Close", "logs"),
    Key("logs_toggle", "l", "close", "Close logs", "logs"),
    Key("logs_level", "w", "cycle_level", "Level", "logs"),
    Key("logs_filter", "slash", "filter", "Filter", "logs", display="/"),
    Key("logs_follow", "f", "follow", "Follow", "logs"),
    Key("logs_quit", "q", "app.quit", "Quit", "logs"),
    Key("filter_cancel", "escape", "cancel", "Clear filter", "filter_bar"),
    Key("help_toggle", "question_mark", "close_help", "Close help", "help", display="?"),
    Key("help_quit", "q", "app.quit", "Quit", "help"),
    Key("usage_close", "escape", "close", "Close", "usage"),
    Key("usage_toggle", "u", "close", "Close usage", "usage"),
    Key("usage_quit", "q", "app.quit", "Quit", "usage"),
    Key("console_close", "escape", "close", "Close", "console"),
    *(
        Key(f"console_{n}", k, f"history({d})", "History", "console_input", display=v, group=g)
        for n, k, d, v, g in (
            ("previous", "up", -1, "↑", HISTORY_GROUP),
            ("next", "down", 1, "↓", HISTORY_GROUP),
        )
    ),
)

BY_ID: dict[str, Key] = {k.id: k for k in KEYS}


def in_scope(scope: Scope) -> tuple[Key, ...]:
    return tuple(k for k in KEYS if k.scope == scope)


MUTATIONS = frozenset(k.action_name for k in in_scope("app") if k.mutates)
"""The app's actions that change the engine: dimmed while another one runs."""
FOCUS_KEYS = tuple(listed for listed, _narrow in _FOCUS)
"""The digits that focus panes 1 to 4, as the footer and the palette list them."""
ACTION_KEYS = tuple(k for k in in_scope("app") if k.palette and k not in FOCUS_KEYS)
"""The app's keys the palette offers while they can act, in footer order."""


def bindings(scope: Scope) -> list[BindingType]:
    """The BINDINGS of the class that owns `scope`, in registry order."""
    return [k.binding() for k in in_scope(scope)]


def key_table() -> str:
    """The help screen's table of keys: one row per key that has a `manual` line."""
    rows = [k.table_row() for k in KEYS if k.manual]
    return "\n".join(["| key | what it does |", "|---|---|", *rows])


def with_key_table(markdown: str) -> str:
    """`markdown` with its KEY_TABLE_MARKER line replaced by the table of keys."""
    return markdown.replace(KEY_TABLE_MARKER, key_table())
