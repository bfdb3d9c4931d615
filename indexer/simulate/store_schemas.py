"""The tables of each OpenCode store generation the simulator writes (1.18 and 2.x, research note
opencode_sqlite_2026.md §3-4) and the connection OpenCode opens. Never writes a record."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from indexer.simulate.opencode_db import OPENCODE_SQLITE_SCHEMA, open_like_opencode

GENERATIONS = ("1.2", "1.18", "2.x", "upgraded")

_MESSAGE_INDEXES = (
    "CREATE UNIQUE INDEX `session_message_session_seq_idx` ON `session_message` "
    "(`session_id`,`seq`)",
    "CREATE INDEX `session_message_session_type_seq_idx` ON `session_message` "
    "(`session_id`,`type`,`seq`)",
    "CREATE INDEX `session_message_session_time_created_id_idx` ON `session_message` "
    "(`session_id`,`time_created`,`id`)",
    "CREATE INDEX `session_message_time_created_idx` ON `session_message` (`time_created`)",
)


def session_message_table(owner: str, name: str = "session_message") -> str:
    """session_message: FK to `session` in 1.x (since 20260427172553_slow_nightmare), to
    `session_v2` in 2.x (§2, §4)."""
    return f"""CREATE TABLE `{name}` (`id` text PRIMARY KEY, `session_id` text NOT NULL,
    `type` text NOT NULL, `seq` integer NOT NULL, `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL, `data` text NOT NULL,
    CONSTRAINT `fk_session_message_session_id_{owner}_id_fk` FOREIGN KEY (`session_id`)
        REFERENCES `{owner}`(`id`) ON DELETE CASCADE)"""


def todo_table(owner: str, name: str = "todo") -> str:
    return f"""CREATE TABLE `{name}` (`session_id` text NOT NULL, `content` text NOT NULL,
    `status` text NOT NULL, `priority` text NOT NULL, `position` integer NOT NULL,
    `time_created` integer NOT NULL, `time_updated` integer NOT NULL,
    CONSTRAINT `todo_pk` PRIMARY KEY(`session_id`, `position`),
    CONSTRAINT `fk_todo_session_id_{owner}_id_fk` FOREIGN KEY (`session_id`)
        REFERENCES `{owner}`(`id`) ON DELETE CASCADE)"""


_EVENT_TABLES = (
    """CREATE TABLE `event_sequence` (`aggregate_id` text PRIMARY KEY, `seq` integer NOT NULL,
    `owner_id` text)""",
    """CREATE TABLE `event` (`id` text PRIMARY KEY, `aggregate_id` text NOT NULL,
    `seq` integer NOT NULL, `type` text NOT NULL, `data` text NOT NULL)""",
    "CREATE UNIQUE INDEX `event_aggregate_seq_idx` ON `event` (`aggregate_id`,`seq`)",
    "CREATE TABLE `migration` (`id` text PRIMARY KEY, `time_completed` integer NOT NULL)",
)

# 1.18 (§3): 1.2's tables (whose session already carries the 1.16+ rollup columns) plus
# session_message (switch rows only), the event log and the migration bookkeeping.
SCHEMA_1_18 = (
    *OPENCODE_SQLITE_SCHEMA,
    "ALTER TABLE `session` ADD `metadata` text",
    session_message_table("session"),
    *_MESSAGE_INDEXES,
    *_EVENT_TABLES,
)

# session_v2 (§4); `fork_boundary` is JSON {type, messageID}; title NULL until named.
SESSION_V2 = """CREATE TABLE `session_v2` (`id` text PRIMARY KEY, `project_id` text NOT NULL,
    `workspace_id` text, `parent_id` text, `fork_session_id` text, `fork_boundary` text,
    `slug` text NOT NULL, `directory` text NOT NULL, `path` text, `title` text,
    `version` text NOT NULL, `share_url` text, `summary_additions` integer,
    `summary_deletions` integer, `summary_files` integer, `summary_diffs` text, `metadata` text,
    `cost` real DEFAULT 0 NOT NULL, `tokens_input` integer DEFAULT 0 NOT NULL,
    `tokens_output` integer DEFAULT 0 NOT NULL, `tokens_reasoning` integer DEFAULT 0 NOT NULL,
    `tokens_cache_read` integer DEFAULT 0 NOT NULL, `tokens_cache_write` integer DEFAULT 0 NOT NULL,
    `revert` text, `permission` text, `agent` text, `model` text,
    `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `time_idle` integer,
    `time_viewed` integer, `idle_outcome` text, `time_compacting` integer, `time_archived` integer,
    `time_suspended` integer, `resume_attempts` integer DEFAULT 0 NOT NULL,
    CONSTRAINT `fk_session_v2_project_id_project_id_fk` FOREIGN KEY (`project_id`)
        REFERENCES `project`(`id`) ON DELETE CASCADE)"""
_SESSION_V2_INDEXES = (
    "CREATE INDEX `session_v2_project_idx` ON `session_v2` (`project_id`)",
    "CREATE INDEX `session_v2_workspace_idx` ON `session_v2` (`workspace_id`)",
    "CREATE INDEX `session_v2_parent_idx` ON `session_v2` (`parent_id`)",
)
KV_TABLE = """CREATE TABLE `kv` (`key` text PRIMARY KEY, `value` text NOT NULL,
    `time_created` integer NOT NULL, `time_updated` integer NOT NULL)"""

# A fresh 2.x file (§4): no session/message/part tables at all.
SCHEMA_2X = (
    OPENCODE_SQLITE_SCHEMA[0],  # project, as in 1.x
    SESSION_V2,
    *_SESSION_V2_INDEXES,
    session_message_table("session_v2"),
    *_MESSAGE_INDEXES,
    todo_table("session_v2"),
    *_EVENT_TABLES,
    "ALTER TABLE `event` ADD `created` integer",
    KV_TABLE,
)

# What a 2.x start adds to a 1.18 file before V1Migration runs. The 1.x history tables stay;
# session_message and todo are rebuilt to reference session_v2 with foreign keys off, so 1.x
# switch rows of sessions the migration has not reached survive as rows without a session_v2
# owner (the note, §9, leaves their fate open; this is the harder case for a reader).
UPGRADE_DDL = (
    SESSION_V2,
    *_SESSION_V2_INDEXES,
    KV_TABLE,
    "ALTER TABLE `event` ADD `created` integer",
    session_message_table("session_v2", "session_message_new"),
    "INSERT INTO `session_message_new` SELECT id, session_id, type, seq, time_created, "
    "time_updated, data FROM `session_message`",
    "DROP TABLE `session_message`",
    "ALTER TABLE `session_message_new` RENAME TO `session_message`",
    *_MESSAGE_INDEXES,
    todo_table("session_v2", "todo_new"),
    "INSERT INTO `todo_new` SELECT session_id, content, status, priority, position, "
    "time_created, time_updated FROM `todo`",
    "DROP TABLE `todo`",
    "ALTER TABLE `todo_new` RENAME TO `todo`",
)


def create_store(path: Path, generation: str) -> sqlite3.Connection:
    """Open the store, creating the tables of `generation` ("1.18" or "2.x"; an upgraded file
    starts as 1.18) when the file has none yet."""
    db = open_like_opencode(path)
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'project'").fetchone():
        return db
    statements = SCHEMA_2X if generation == "2.x" else SCHEMA_1_18
    db.execute("BEGIN IMMEDIATE")
    for statement in statements:
        db.execute(statement)
    if generation != "2.x":  # long-lived 1.x files keep drizzle's own table too (§1)
        db.execute("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('sim', 0)")
    db.execute("INSERT INTO migration (id, time_completed) VALUES (?, 0)", [f"sim-{generation}"])
    db.execute("COMMIT")
    return db


def upgrade_to_2x(db: sqlite3.Connection) -> None:
    """Add the 2.x tables to a 1.18 file (one transaction, foreign keys off for the rebuild as
    drizzle's table rebuilds do)."""
    db.execute("PRAGMA foreign_keys=OFF")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in UPGRADE_DDL:
            db.execute(statement)
        db.execute("INSERT INTO migration (id, time_completed) VALUES ('sim-2.x', 0)")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.execute("PRAGMA foreign_keys=ON")
