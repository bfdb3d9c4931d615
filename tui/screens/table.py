"""v1 and v2 side by side as aligned text: a heading row, one row per figure, then the ratio.
Shared by the A/B view and the A/B trial; never fetches a figure, only lays them out.
"""

from __future__ import annotations

from textual.content import Content

from tui import format as fmt


def side_by_side(
    rows: list[tuple[str, str, str]], active: str, ratio_label: str, ratio: float | None
) -> Content:
    """`rows` of (label, v1 text, v2 text); `active` ('v1', 'v2' or '') gets a ● mark."""
    label_w = max(len(label) for label, _, _ in (*rows, (ratio_label, "", ""))) + 2
    value_w = max(14, *(len(r[1]) for r in rows), *(len(r[2]) for r in rows)) + 2

    def head(version: str) -> str:
        mark = " ●" if version == active else ""
        return fmt.fit(f"{version}{mark}", value_w).ljust(value_w)

    lines = [
        Content.from_markup(
            "[b]$pad$v1$v2[/]", pad=" " * label_w, v1=head("v1"), v2=head("v2").rstrip()
        )
    ]
    for label, a, b in rows:
        lines.append(
            Content.from_markup(
                "[dim]$label[/]$a$b", label=label.ljust(label_w), a=a.ljust(value_w), b=b
            )
        )
    lines.append(
        Content.from_markup(
            "[dim]$label[/][b]$ratio[/]", label=ratio_label.ljust(label_w), ratio=fmt.ratio(ratio)
        )
    )
    return Content("\n").join(lines)
