"""Search of the stored text (text and reasoning parts, 2.x message text, tool targets, titles).
Never writes the index: it reads through indexer.live.reading, live or idle, as `query` does.

Each record is found once (fork copies left out), newest first, with a snippet. Matching is a
substring test, case-insensitive by RE2's Unicode simple case folding (DuckDB's regexp_matches:
~4x faster here than lower() with strpos, and it reads ς, σ and Σ alike). No full case folding
(ß never matches "ss"), no accent folding; the search text is NFC-normalized, as OpenCode's text
usually is. DuckDB's `fts` extension is not used: extensions download from DuckDB's own site,
not PyPI, and none is packaged for DuckDB 2.0. docs/benchmarks.md has the bound on 1,000,000
parts.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import duckdb

from indexer.live.reading import reading
from indexer.live.readonly import QueryError

DEFAULT_LIMIT = 20
DEFAULT_CONTEXT = 60
"""Characters of the snippet on each side of the match."""
DEFAULT_TIMEOUT_S = 60.0
KINDS = ("text", "reasoning", "message", "tool", "title")
"""What a hit is: a text or reasoning part, a 2.x message row's own text (user, system,
synthetic, skill), a tool call's target, a session's title."""
_SPACE = re.compile(r"\s+")
_SOURCE = {
    "text": "part",
    "reasoning": "part",
    "tool": "part",
    "message": "message",
    "title": "session",
}
"""Where each kind of hit keeps its text."""
_PART_TEXT = "coalesce(p.text, p.text_preview)"
SNIPPET_BATCH = 1_000
"""Hits whose text one query fetches by id."""


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str
    """One of KINDS."""
    detail: str | None
    """The tool of a `tool` hit, the message type of a `message` hit."""
    session_id: str
    session_title: str | None
    record_id: str
    """The part, message or session that holds the text."""
    at: dt.datetime | None
    """When, in the search's time zone (naive local time): the part's start, else its message's
    creation; a session's creation for a title."""
    before: str
    match: str
    """The matched text as written, between `before` and `after` (whitespace runs as one space)."""
    after: str
    cut_before: bool
    """Text precedes `before`."""
    cut_after: bool


@dataclass(frozen=True, slots=True)
class SearchResult:
    text: str
    hits: tuple[Hit, ...]
    total: int
    """Every hit in range, of which `hits` holds the newest `limit`."""
    time_zone: str
    live_pid: int | None
    """The ocindex process that answered, or None when the file was read directly."""
    elapsed_s: float


def short_id(session_id: str) -> str:
    """The last 8 characters: OpenCode ids start with their creation time, so they end apart."""
    return session_id[-8:]


def local_zone() -> str:
    """This machine's time zone as DuckDB names it (what `ocindex usage` uses by default)."""
    with duckdb.connect() as conn:
        row = conn.execute("SELECT current_setting('TimeZone')").fetchone()
    return str(row[0]) if row else "UTC"


def literal(text: str) -> str:
    """`text` as a SQL string literal: the live endpoint takes SQL only, never parameters."""
    return "'" + text.replace("'", "''") + "'"


def search(
    db: Path | str,
    text: str,
    *,
    session: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = DEFAULT_LIMIT,
    tz: str | None = None,
    context: int = DEFAULT_CONTEXT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SearchResult:
    """The newest `limit` hits of `text` in the index at `db`, from `since` to `until` (local
    days in `tz`, default this machine's zone), in one session (its id, or the first or last
    characters of it) or all. Raises ValueError for a bad argument, QueryError when the index
    cannot be read or predates schema 6."""
    needle = unicodedata.normalize("NFC", text)
    if not needle.strip():
        raise ValueError("the search text is empty")
    if limit < 1:
        raise ValueError("the limit must be at least 1")
    started = time.monotonic()
    known = "TRUE"
    if tz is not None:
        zones = "SELECT lower(name) FROM pg_timezone_names()"
        known = f"lower({literal(tz)}) IN ({zones})"
    with reading(Path(db), timeout_s) as reader:
        probe = reader.read(
            "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_name = 'parts' "
            "AND column_name IN ('text', 'tool_target')) AS columns, "
            f"current_setting('TimeZone') AS zone, {known} AS known"
        ).to_pylist()[0]
        if not probe["known"]:
            raise ValueError(f"unknown time zone {tz!r}; expected a name such as Europe/Paris")
        if probe["columns"] != 2:
            raise QueryError("the index predates schema 6; run `ocindex index` once to upgrade it")
        live_pid = reader.live_pid
        # The live process's zone may not be this shell's: ask this process's DuckDB then.
        zone = tz or (str(probe["zone"]) if live_pid is None else local_zone())
        rows = reader.read(hits_sql(needle, zone, session, since, until, limit)).to_pylist()
        texts: dict[tuple[str, str], dict[str, object]] = {}
        for start in range(0, len(rows), SNIPPET_BATCH):
            batch = rows[start : start + SNIPPET_BATCH]
            for t in reader.read(snippets_sql(batch, needle, context)).to_pylist():
                texts[(str(t["source"]), str(t["id"]))] = t
    hits = tuple(_hit(r, texts) for r in rows)
    total = int(rows[0]["total"]) if rows else 0
    return SearchResult(needle, hits, total, zone, live_pid, time.monotonic() - started)


def hits_sql(
    needle: str,
    zone: str,
    session: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """The newest `limit` hits and their count, without their text: a common word may match
    hundreds of thousands of long parts, and a join back to `parts` would read all their text
    again, so snippets_sql fetches the few texts shown by id."""
    pattern = literal(regex(needle))
    # A run of characters without case (digits, punctuation, CJK) must appear as written:
    # contains() rules most texts out several times faster than the case-insensitive pattern.
    run = caseless_run(needle)
    prefilter = f"contains({{expr}}, {literal(run)}) AND " if len(run) >= 3 else ""

    def found(expr: str) -> str:
        return prefilter.format(expr=expr) + f"regexp_matches({expr}, {pattern})"

    counted = "NOT coalesce({a}.is_fork_copy, false)"
    sources = [
        "SELECT p.type AS kind, NULL AS detail, p.session_id, p.id AS record_id, p.message_id, "
        "p.time_start AS at FROM parts p "
        f"WHERE p.type IN ('text', 'reasoning') AND {counted.format(a='p')} "
        f"AND {found(_PART_TEXT)}",
        "SELECT 'message', coalesce(m.type, m.role), m.session_id, m.id, m.id, m.time_created "
        f"FROM messages m WHERE m.text IS NOT NULL AND {counted.format(a='m')} "
        f"AND {found('m.text')}",
        "SELECT 'tool', p.tool, p.session_id, p.id, p.message_id, p.time_start FROM parts p "
        f"WHERE p.type = 'tool' AND {counted.format(a='p')} AND {found('p.tool_target')}",
        "SELECT 'title', NULL, s.id, s.id, NULL, s.time_created FROM sessions s "
        f"WHERE {found('s.title')}",
    ]
    where = ["TRUE"]
    if session is not None:
        s = literal(session)
        where.append(
            f"(h.session_id = {s} OR starts_with(h.session_id, {s}) "
            f"OR ends_with(h.session_id, {s}))"
        )
    local = f"timezone({literal(zone)}, coalesce(h.at, m.time_created) AT TIME ZONE 'UTC')"
    if since is not None:
        where.append(f"{local} >= DATE '{since.isoformat()}'")
    if until is not None:
        where.append(f"{local} < DATE '{(until + dt.timedelta(days=1)).isoformat()}'")
    union = "\nUNION ALL\n".join(sources)
    return f"""
WITH hits AS ({union})
SELECT h.kind, h.detail, h.session_id, h.record_id, {local} AS at_local,
       count(*) OVER () AS total
FROM hits h LEFT JOIN messages m ON m.id = h.message_id
WHERE {" AND ".join(where)}
ORDER BY at_local DESC NULLS LAST, h.record_id LIMIT {int(limit)}
"""


def snippets_sql(rows: list[dict[str, object]], needle: str, context: int) -> str:
    """For the hits in `rows`, each holding text's snippet around the first match (by `source`
    and `id`: a part, a message or a session, whose title is also the session's name)."""
    wanted: dict[str, set[str]] = {"part": set(), "message": set(), "session": set()}
    for r in rows:
        wanted[_SOURCE[str(r["kind"])]].add(str(r["record_id"]))
        wanted["session"].add(str(r["session_id"]))

    def ids(source: str) -> str:
        return "(" + ", ".join(literal(i) for i in sorted(wanted[source])) + ")"

    sources = [
        f"SELECT 'part' AS source, p.id, CASE WHEN p.type = 'tool' THEN p.tool_target "
        f"ELSE {_PART_TEXT} END AS body FROM parts p WHERE p.id IN {ids('part')}",
        f"SELECT 'message' AS source, m.id, m.text AS body FROM messages m "
        f"WHERE m.id IN {ids('message')}",
        f"SELECT 'session' AS source, s.id, s.title AS body FROM sessions s "
        f"WHERE s.id IN {ids('session')}",
    ]
    union = "\nUNION ALL\n".join(q for q, k in zip(sources, wanted, strict=True) if wanted[k])
    pattern, c = literal(regex(needle)), int(context)
    # The leftmost match is the first occurrence of the text it matched: strpos finds it, in
    # code points as substr counts.
    return f"""
WITH bodies AS ({union}),
matched AS (SELECT *, regexp_extract(body, {pattern}) AS found FROM bodies),
placed AS (SELECT *, strpos(body, found) AS pos, length(found) AS n FROM matched)
SELECT source, id, body AS title,
       substr(body, greatest(1, pos - {c}), pos - greatest(1, pos - {c})) AS before,
       found AS match,
       substr(body, pos + n, {c}) AS after,
       pos - {c} > 1 AS cut_before,
       pos + n + {c} <= length(body) AS cut_after
FROM placed
"""


def caseless_run(needle: str) -> str:
    """The longest run of `needle` whose characters have no case (lower and upper alike)."""
    best = current = ""
    for ch in needle:
        current = current + ch if ch.lower() == ch == ch.upper() else ""
        best = max(best, current, key=len)
    return best if best.strip() else ""


def regex(needle: str) -> str:
    """A case-insensitive RE2 pattern matching `needle` literally: every character but ASCII
    letters and digits written as its code point, so no character is special and the SQL
    literal is plain ASCII."""
    return "(?i)" + "".join(
        ch if ch.isascii() and ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in needle
    )


def _hit(row: dict[str, object], texts: dict[tuple[str, str], dict[str, object]]) -> Hit:
    at = row["at_local"]
    text = texts.get((_SOURCE[str(row["kind"])], str(row["record_id"])), {})
    session = texts.get(("session", str(row["session_id"])), {})
    cut_before, cut_after = bool(text.get("cut_before")), bool(text.get("cut_after"))
    before = _SPACE.sub(" ", str(text.get("before") or ""))
    after = _SPACE.sub(" ", str(text.get("after") or ""))
    title = session.get("title")
    return Hit(
        kind=str(row["kind"]),
        detail=None if row["detail"] is None else str(row["detail"]),
        session_id=str(row["session_id"]),
        session_title=None if title is None else str(title),
        record_id=str(row["record_id"]),
        at=at if isinstance(at, dt.datetime) else None,
        before=before if cut_before else before.lstrip(),
        match=_SPACE.sub(" ", str(text.get("match") or "")),
        after=after if cut_after else after.rstrip(),
        cut_before=cut_before,
        cut_after=cut_after,
    )
