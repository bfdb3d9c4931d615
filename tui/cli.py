"""The `ocindex` console script: the headless commands plus the dashboard, the default.
Textual is imported only when the dashboard actually starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from indexer.cli import build_parser, run_command


def _add_tui(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tui",
        help="open the live dashboard (the default command)",
        description="Open the dashboard. On a database a running ocindex serves (`ocindex run`, "
        "another dashboard) it attaches to that process: the same panes, its keys acting on it. "
        "With no OpenCode storage it runs a live demo.",
    )
    p.add_argument("--storage", type=Path, help="OpenCode storage root")
    p.add_argument(
        "--db", type=Path, help="ocindex DuckDB file (default under $XDG_DATA_HOME/ocindex/)"
    )
    p.add_argument(
        "--indexer",
        choices=("v1", "v2"),
        help="force an indexer over the rollout (default: as the rollout says; v2 on a fresh install)",
    )
    p.add_argument(
        "--opencode-db",
        type=Path,
        help="OpenCode's SQLite store (default: found beside the storage)",
    )
    p.add_argument("--demo", action="store_true", help="run on simulated live activity")
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    from tui.entry import run_dashboard

    return run_dashboard(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = build_parser()
    _add_tui(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a in sub.choices for a in argv) and not any(a in ("-h", "--help") for a in argv):
        argv = ["tui", *argv]
    args = parser.parse_args(argv)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
