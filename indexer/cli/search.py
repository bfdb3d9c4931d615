"""`ocindex search TEXT`: where a text appears in prompts, answers, reasoning, tool targets and
session titles, newest first, with the session, the local time and a snippet. Never writes the
index: indexer.search reads it, live through the running process or idle from the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from indexer.cli.options import Fatal, Subparsers, add_day_range, db_path
from indexer.config import ConfigError, process_env
from indexer.live.readonly import QueryError
from indexer.search import DEFAULT_LIMIT, Hit, SearchResult, search, short_id

BOLD, RESET = "\x1b[1;33m", "\x1b[0m"
MARK_OPEN, MARK_CLOSE = "[[", "]]"
"""The match's marker where no terminal shows colour (a pipe, a file, NO_COLOR)."""
TITLE_WIDTH = 50


def add_search(sub: Subparsers) -> None:
    p = sub.add_parser(
        "search",
        help="find a text in prompts, answers, reasoning, tool targets and session titles",
        description="Find TEXT, ignoring case, in text and reasoning parts, OpenCode 2 message "
        "text, tool call targets (paths, commands, patterns, urls) and session titles; fork "
        "copies are left out, so each record is shown once. Newest first. Live or idle, as "
        "`ocindex query`.",
        epilog="exit codes: 0 the search ran, whether or not it found anything (`--json` gives "
        "`total`); 1 the index cannot be read (one `ocindex: error:` line); 2 a usage error.",
    )
    p.add_argument("text", help="the text to find (a literal string, not a pattern)")
    p.add_argument("--db", type=Path, help="ocindex DuckDB file")
    p.add_argument("--session", help="only this session: its id, or its first or last characters")
    add_day_range(
        p, "time zone of days and times, e.g. UTC or Europe/Paris (default: this machine's)"
    )
    p.add_argument(
        "--limit",
        default=DEFAULT_LIMIT,
        help=f"show at most this many hits, 1 to 100000000 (default {DEFAULT_LIMIT})",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since > args.until:
        raise ConfigError(f"--since {args.since} is after --until {args.until}")
    try:
        result = search(
            db_path(args),
            args.text,
            session=args.session,
            since=args.since,
            until=args.until,
            limit=int(args.limit),
            tz=args.tz,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except QueryError as exc:
        raise Fatal(str(exc)) from None
    if args.json:
        print(json.dumps(as_json(result), indent=2, ensure_ascii=False))
    else:
        colour = sys.stdout.isatty() and not process_env().get("NO_COLOR")
        for line in text_lines(result, colour):
            print(line)
    return 0


def as_json(result: SearchResult) -> dict[str, Any]:
    return {
        "text": result.text,
        "time_zone": result.time_zone,
        "total": result.total,
        "shown": len(result.hits),
        "live_pid": result.live_pid,
        "hits": [
            {
                "kind": h.kind,
                "detail": h.detail,
                "session_id": h.session_id,
                "session_title": h.session_title,
                "record_id": h.record_id,
                "time": h.at.isoformat(timespec="seconds") if h.at else None,
                "snippet": snippet(h, MARK_OPEN, MARK_CLOSE),
                "match": h.match,
            }
            for h in result.hits
        ],
    }


def snippet(hit: Hit, open_mark: str, close_mark: str) -> str:
    before = ("…" if hit.cut_before else "") + hit.before
    after = hit.after + ("…" if hit.cut_after else "")
    return f"{before}{open_mark}{hit.match}{close_mark}{after}"


def text_lines(result: SearchResult, colour: bool) -> list[str]:
    """Two lines a hit: time, kind and session; then the snippet, the match marked."""
    marks = (BOLD, RESET) if colour else (MARK_OPEN, MARK_CLOSE)
    out: list[str] = []
    for h in result.hits:
        when = h.at.strftime("%Y-%m-%d %H:%M") if h.at else "????-??-?? ??:??"
        kind = f"{h.kind}:{h.detail}" if h.detail else h.kind
        title = _short(h.session_title or "(untitled)")
        out.append(f"{when}  {kind:<17} {title} ({short_id(h.session_id)})")
        out.append("    " + snippet(h, *marks))
    shown, total = len(result.hits), result.total
    if not total:
        out.append(f"no match for {result.text!r}")
    elif shown < total:
        out.append(f"{shown} newest of {total:,} hits (--limit); times in {result.time_zone}")
    else:
        out.append(f"{total:,} hit{'' if total == 1 else 's'}; times in {result.time_zone}")
    return out


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_WIDTH else text[: TITLE_WIDTH - 1] + "…"
