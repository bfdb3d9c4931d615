"""The index's views, defined once: usage per message and day, sessions summed with their
subagents, tool calls and their statistics, files touched. Never writes a table.

Every view counts each logical record once: fork copies are left out (`NOT coalesce(
is_fork_copy, false)`), and usage is read from messages only, never from step-finish parts,
which repeat their message's totals. Days are local dates in the connection's `TimeZone`
setting (DuckDB's default is the machine's zone; `SET TimeZone = 'UTC'` changes it), because
timestamps are stored as naive UTC. docs/schema.md documents every column.
"""

from __future__ import annotations

import duckdb

VIEWS_VERSION = "1"
"""Bumped whenever a definition below changes: the writer recreates the views on open."""

COUNTED = "NOT coalesce({a}.is_fork_copy, false)"
_LOCAL_DAY = "CAST({col} AT TIME ZONE 'UTC' AS DATE)"

_CLASSES = ("input", "output", "reasoning", "cache_read", "cache_write")
_SUM_CLASSES = " + ".join(f"coalesce(m.tokens_{c}, 0)" for c in _CLASSES)
_SUMS = ",\n       ".join(
    f"CAST(sum(tokens_{c}) AS BIGINT) AS tokens_{c}" for c in (*_CLASSES, "total")
)

READ_TOOLS = ("read",)
EDIT_TOOLS = ("edit", "write", "multiedit")


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


USAGE_MESSAGES = f"""
SELECT m.id AS message_id, m.session_id, s.project_id, s.directory, s.parent_id AS parent_session_id,
       m.time_created, {_LOCAL_DAY.format(col="m.time_created")} AS day,
       m.provider_id, m.model_id, m.agent, coalesce(m.type, m.role) AS kind,
       {", ".join(f"coalesce(m.tokens_{c}, 0) AS tokens_{c}" for c in _CLASSES)},
       coalesce(m.tokens_total, {_SUM_CLASSES}) AS tokens_total,
       coalesce(m.cost, 0) AS cost
FROM messages m LEFT JOIN sessions s ON s.id = m.session_id
WHERE (m.role = 'assistant' OR m.type = 'compaction') AND {COUNTED.format(a="m")}
"""

USAGE_DAILY = f"""
SELECT day, provider_id, model_id, agent, count(*) AS messages,
       {_SUMS},
       sum(cost) AS cost
FROM usage_messages GROUP BY ALL
"""

TOOL_CALLS = f"""
SELECT p.id AS part_id, p.session_id, p.message_id, p.tool, p.tool_status AS status,
       p.tool_target AS target, p.tool_description AS description, p.exit_code,
       coalesce(p.interrupted, false) AS interrupted,
       (p.tool_status = 'error' OR coalesce(p.exit_code, 0) != 0) AS failed,
       p.time_start, p.time_end, date_diff('millisecond', p.time_start, p.time_end) AS duration_ms,
       {_LOCAL_DAY.format(col="p.time_start")} AS day,
       p.child_session_id, p.subagent_type
FROM parts p WHERE p.type = 'tool' AND {COUNTED.format(a="p")}
"""

TOOL_STATS = """
SELECT tool, count(*) AS calls,
       count(*) FILTER (failed) AS failures,
       count(*) FILTER (coalesce(exit_code, 0) != 0) AS nonzero_exits,
       count(*) FILTER (interrupted) AS interrupted,
       quantile_cont(duration_ms, 0.5) AS p50_ms,
       quantile_cont(duration_ms, 0.95) AS p95_ms,
       max(duration_ms) AS max_ms
FROM tool_calls GROUP BY tool
"""

FILE_ACTIVITY = f"""
WITH touches AS (
    SELECT session_id, target AS file,
           CASE WHEN tool IN {_sql_list(READ_TOOLS)} THEN 'read' ELSE 'edit' END AS action,
           time_start AS touched_at
    FROM tool_calls
    WHERE tool IN {_sql_list(READ_TOOLS + EDIT_TOOLS)} AND target IS NOT NULL
    UNION ALL
    SELECT p.session_id, unnest(from_json(p.patch_files, '["VARCHAR"]')), 'patch', m.time_created
    FROM parts p LEFT JOIN messages m ON m.id = p.message_id
    WHERE p.type = 'patch' AND {COUNTED.format(a="p")}
    UNION ALL
    SELECT m.session_id, unnest(from_json(m.patch_files, '["VARCHAR"]')), 'patch', m.time_created
    FROM messages m WHERE m.patch_files IS NOT NULL AND {COUNTED.format(a="m")}
)
SELECT session_id, file,
       count(*) FILTER (action = 'read') AS reads,
       count(*) FILTER (action = 'edit') AS edits,
       count(*) FILTER (action = 'patch') AS patches,
       min(touched_at) AS first_at, max(touched_at) AS last_at
FROM touches GROUP BY session_id, file
"""

SESSION_SUMMARY = f"""
WITH RECURSIVE tree(root_id, id) AS (
    SELECT id, id FROM sessions
    UNION  -- not ALL: a parent cycle in broken data ends instead of looping
    SELECT t.root_id, s.id FROM tree t JOIN sessions s ON s.parent_id = t.id
),
own AS (
    SELECT session_id, count(*) AS llm_messages, {_SUMS}, sum(cost) AS cost
    FROM usage_messages GROUP BY session_id
),
turns AS (
    SELECT session_id,
           count(*) FILTER (m.role = 'user') AS turns,
           count(*) FILTER (m.role = 'assistant' AND m.error_name IS NOT NULL) AS errors,
           min(m.time_created) AS first_at,
           max(coalesce(m.time_completed, m.time_created)) AS last_at
    FROM messages m WHERE {COUNTED.format(a="m")} GROUP BY session_id
),
tools AS (
    SELECT session_id, count(*) AS tool_calls, count(*) FILTER (failed) AS tool_failures
    FROM tool_calls GROUP BY session_id
),
kids AS (
    SELECT t.root_id AS session_id, sum(o.cost) AS cost, sum(o.tokens_total) AS tokens
    FROM tree t JOIN own o ON o.session_id = t.id WHERE t.id != t.root_id GROUP BY t.root_id
)
SELECT s.id AS session_id, s.title, s.project_id, s.directory, s.parent_id,
       coalesce(s.time_created, u.first_at) AS started, u.last_at AS last_activity,
       date_diff('millisecond', coalesce(s.time_created, u.first_at), u.last_at) / 1000.0
           AS duration_s,
       coalesce(u.turns, 0) AS turns, coalesce(o.llm_messages, 0) AS llm_messages,
       {", ".join(f"coalesce(o.tokens_{c}, 0) AS tokens_{c}" for c in (*_CLASSES, "total"))},
       coalesce(o.cost, 0) AS cost,
       coalesce(k.tokens, 0) AS children_tokens, coalesce(k.cost, 0) AS children_cost,
       coalesce(o.cost, 0) + coalesce(k.cost, 0) AS total_cost,
       coalesce(tl.tool_calls, 0) AS tool_calls, coalesce(tl.tool_failures, 0) AS tool_failures,
       coalesce(u.errors, 0) AS errors
FROM sessions s
LEFT JOIN own o ON o.session_id = s.id
LEFT JOIN turns u ON u.session_id = s.id
LEFT JOIN tools tl ON tl.session_id = s.id
LEFT JOIN kids k ON k.session_id = s.id
"""

SUBAGENT_USAGE = """
SELECT ss.parent_id AS parent_session_id, ss.session_id, t.subagent_type, t.description,
       ss.title, ss.started, ss.llm_messages, ss.tokens_total, ss.cost, ss.children_cost,
       ss.total_cost
FROM session_summary ss
LEFT JOIN (
    SELECT child_session_id, any_value(subagent_type) AS subagent_type,
           any_value(description) AS description
    FROM tool_calls WHERE child_session_id IS NOT NULL GROUP BY child_session_id
) t ON t.child_session_id = ss.session_id
WHERE ss.parent_id IS NOT NULL
"""

VIEWS: tuple[tuple[str, str], ...] = (
    ("usage_messages", USAGE_MESSAGES),
    ("usage_daily", USAGE_DAILY),
    ("tool_calls", TOOL_CALLS),
    ("tool_stats", TOOL_STATS),
    ("file_activity", FILE_ACTIVITY),
    ("session_summary", SESSION_SUMMARY),
    ("subagent_usage", SUBAGENT_USAGE),
)
"""In dependency order: a view only reads tables and the views before it."""


def create_views(conn: duckdb.DuckDBPyConnection, temporary: bool = False) -> None:
    """(Re)create every view; temporary ones live in this connection only, so a read-only
    connection can define them over an index written by another ocindex."""
    kind = "TEMP VIEW" if temporary else "VIEW"
    for name, sql in VIEWS:
        conn.execute(f"CREATE OR REPLACE {kind} {name} AS {sql}")
