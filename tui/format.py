"""Every number, duration, rate, age and path the dashboard shows is turned into text here, once.
Pure functions of their arguments: never reads a clock, a file or the engine.
"""

from __future__ import annotations

import os

from indexer.snapshot import Alert, Percentiles

NONE = "—"
ELLIPSIS = "…"


def count(n: int) -> str:
    """12345 -> '12,345'; millions shorten to '1.23M'."""
    if abs(n) >= 10_000_000:
        return f"{n / 1_000_000:.1f}M"
    if abs(n) >= 1_000_000:
        return f"{n / 1_000_000:.2f}M"
    return f"{n:,}"


def files(n: int) -> str:
    """'1 file', '12,345 files'."""
    return f"{count(n)} file" if n == 1 else f"{count(n)} files"


def plural(n: int, one: str, many: str = "") -> str:
    """'1 batch', '2 batches', '0 scans': the count and the word that agrees with it."""
    return f"{count(n)} {one if n == 1 else many or one + 's'}"


def short_root(path: str, width: int = 40, home: str = "") -> str:
    """A folder for a header line: the home folder as '~', then cut in the middle keeping the
    first folder and the last ones ('/tmp/…/ocindex-demo-x/storage')."""
    home = home or os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + "/")):
        path = "~" + path[len(home) :]
    if len(path) <= width:
        return path
    parts = path.split("/")
    head = parts[0] or "/" + parts[1]
    tail = parts[-1]
    for index in range(len(parts) - 2, 1, -1):
        longer = parts[index] + "/" + tail
        if len(head) + len(longer) + 3 > width:
            break
        tail = longer
    shown = f"{head}/{ELLIPSIS}/{tail}"
    return shown if len(shown) <= width else fit_path(path, width)


def compact(n: int) -> str:
    """A count for a narrow column: exact below 10,000 ('9999'), then '13k', '1.2M'."""
    return str(n) if abs(n) < 10_000 else number(n)


def number(x: float) -> str:
    """A measured quantity to about three significant figures: 0.42, 8.5, 812, 1.2k, 3.4M."""
    a = abs(x)
    if a >= 1_000_000:
        return f"{x / 1_000_000:.1f}M"
    if a >= 10_000:
        return f"{x / 1_000:.0f}k"
    if a >= 1_000:
        return f"{x / 1_000:.1f}k"
    if a >= 100 or a == 0:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}".removesuffix(".0")
    return f"{x:.2f}".rstrip("0").rstrip(".")


def per_second(x: float) -> str:
    """A rate: '812/s', '1.2k/s', '0/s'."""
    return f"{number(x)}/s"


def ms(x: float | None) -> str:
    """A latency given in milliseconds: '0.4 ms', '12 ms', '1.2 s'; None is a dash."""
    if x is None:
        return NONE
    if x >= 1_000:
        return f"{x / 1_000:.1f} s"
    return f"{number(x)} ms"


def ms_bare(x: float | None) -> str:
    """A latency in milliseconds without its unit, for rows that state the unit once."""
    return NONE if x is None else number(x)


def percentiles(p: Percentiles) -> str:
    """'12 / 40 / 61 ms' (p50 / p95 / p99); a dash when nothing was measured."""
    if p.p50 is None and p.p95 is None and p.p99 is None:
        return NONE
    return f"{ms_bare(p.p50)} / {ms_bare(p.p95)} / {ms_bare(p.p99)} ms"


def duration(seconds: float | None) -> str:
    """An elapsed time: '0.4s', '12s', '3m05s', '2h04m', '3d02h'; None is a dash."""
    if seconds is None:
        return NONE
    s = max(0.0, seconds)
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    total = int(s)
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86_400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86_400}d{total % 86_400 // 3600:02d}h"


def ago(then: float | None, now: float) -> str:
    """How long before `now` (both epoch seconds) `then` was: '12s ago', 'just now', 'never'."""
    if then is None:
        return "never"
    delta = now - then
    if delta < 1:
        return "just now"
    if delta < 60:
        return f"{delta:.0f}s ago"
    return f"{duration(delta)} ago"


def since(then: float, now: float) -> str:
    """`ago` for a column headed 'when': '12s', '3m05s', 'now'."""
    delta = now - then
    if delta < 1:
        return "now"
    return f"{delta:.0f}s" if delta < 60 else duration(delta)


def percent(p: float) -> str:
    return f"{p:.0f}%"


def ratio(r: float | None) -> str:
    """v2 over v1: '×4.21'; a dash when either side is idle."""
    if r is None:
        return NONE
    return f"×{r:.2f}" if r < 100 else f"×{r:.0f}"


def fit(text: str, width: int) -> str:
    """Cut `text` to `width` cells at the end, marking the cut with an ellipsis."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: width - 1] + ELLIPSIS


MIN_NAME = 8
"""Cells a shortened path keeps for its file name or record id at least."""
WANTED_NAME = 18
"""Cells of the name for which a shorter form of the kind is chosen."""


def _elide(text: str, width: int) -> str:
    """`text` cut in its middle to `width` cells: its start (type and time) and its end (the
    distinctive random part) both stay."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    keep = width - 1
    head = (keep + 1) // 2
    return f"{text[:head]}{ELLIPSIS}{text[len(text) - (keep - head) :]}"


def _heads(path: str) -> tuple[list[str], str, bool]:
    """The ways to write a key's kind (longest first), its name, and whether folders were
    left out between them. 'sqlite:opencode.db:part/prt_1' has the kind 'sqlite:opencode.db:part'
    or 'sqlite:…:part'; 'part/msg_1/prt_1.json' has 'part' and the name 'prt_1.json'."""
    folders, _, name = path.rpartition("/")
    if not folders:
        return [], path, False
    kind, _, middle = folders.partition("/")
    heads = [kind]
    scheme, colon, rest = kind.partition(":")
    if colon and ":" in rest:
        record = rest.rpartition(":")[2]
        heads += [f"{scheme}:{ELLIPSIS}:{record}", record]
    return heads, name, bool(middle)


def fit_path(path: str, width: int) -> str:
    """Fit a key to `width` cells keeping what tells rows apart: the kind at the start, then the
    file name or record id, cut in its middle ('part/…/prt_c11f5…L5YXBvxi',
    'sqlite:opencode.db:session_message/msg_b77…jrtL_21'); folders in between go first."""
    if width <= 0:
        return ""
    if len(path) <= width:
        return path
    heads, name, skipped = _heads(path)
    short_name = name.removesuffix(".json")
    joint = f"/{ELLIPSIS}/" if skipped else "/"
    # A longer kind is worth it only while the name keeps a readable length; failing that,
    # the shortest kind leaves the name the most room.
    for wanted, kinds in ((min(len(short_name), WANTED_NAME), heads), (MIN_NAME, heads[-1:])):
        for head in kinds:
            room = width - len(head) - len(joint)
            if room >= len(name):
                return f"{head}{joint}{name}"
            if room >= wanted:
                return f"{head}{joint}{_elide(short_name, room)}"
    if width >= MIN_NAME:
        return _elide(short_name, width)
    return path[:width]


def one_line(text: str) -> str:
    """The first line of a possibly multi-line message, without trailing blanks."""
    stripped = text.strip()
    return stripped.splitlines()[0].rstrip() if stripped else ""


def alert_value(figure: str, value: float) -> str:
    """An alert figure's value in its own unit: latencies in ms, rates as percents."""
    name = figure.lower()
    if "latency" in name or name.endswith("_ms") or " ms" in name:
        return ms(value)
    if "rate" in name or "ratio" in name or "share" in name:
        return f"{value * 100:.1f}%" if abs(value) <= 1 else f"{number(value)}%"
    return number(value)


def alert_line(alert: Alert) -> str:
    """'p95 latency 412 ms is over its 250 ms threshold: <message> — press b to roll back'."""
    value = alert_value(alert.figure, alert.value)
    threshold = alert_value(alert.figure, alert.threshold)
    relation = "over" if alert.value >= alert.threshold else "under"
    line = f"{alert.figure} {value} is {relation} its {threshold} threshold"
    detail = one_line(alert.message)
    if detail:
        line = f"{line}: {detail}"
    return f"{line} — press b to roll back"
