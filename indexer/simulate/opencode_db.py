"""OpenCode 1.2's SQLite store: its tables (OPENCODE_SQLITE_SCHEMA) and create_opencode_db,
which opens a database the way OpenCode opens its own. Never writes records: SqliteWriter does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# The tables OpenCode 1.2 creates (drizzle, `session.sql.ts`; research/opencode_data.md §6).
OPENCODE_SQLITE_SCHEMA = (
    """CREATE TABLE `project` (`id` text PRIMARY KEY, `worktree` text NOT NULL, `vcs` text,
    `name` text, `icon_url` text, `icon_color` text, `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL, `time_initialized` integer, `sandboxes` text NOT NULL,
    `commands` text, `icon_url_override` text)""",
    """CREATE TABLE `session` (`id` text PRIMARY KEY, `project_id` text NOT NULL,
    `parent_id` text, `slug` text NOT NULL, `directory` text NOT NULL, `title` text NOT NULL,
    `version` text NOT NULL, `share_url` text, `summary_additions` integer,
    `summary_deletions` integer, `summary_files` integer, `summary_diffs` text, `revert` text,
    `permission` text, `time_created` integer NOT NULL, `time_updated` integer NOT NULL,
    `time_compacting` integer, `time_archived` integer, `workspace_id` text, `path` text,
    `agent` text, `model` text, `cost` real DEFAULT 0 NOT NULL,
    `tokens_input` integer DEFAULT 0 NOT NULL, `tokens_output` integer DEFAULT 0 NOT NULL,
    `tokens_reasoning` integer DEFAULT 0 NOT NULL, `tokens_cache_read` integer DEFAULT 0 NOT NULL,
    `tokens_cache_write` integer DEFAULT 0 NOT NULL,
    CONSTRAINT `fk_session_project_id_project_id_fk` FOREIGN KEY (`project_id`)
        REFERENCES `project`(`id`) ON DELETE CASCADE)""",
    "CREATE INDEX `session_project_idx` ON `session` (`project_id`)",
    "CREATE INDEX `session_parent_idx` ON `session` (`parent_id`)",
    "CREATE INDEX `session_workspace_idx` ON `session` (`workspace_id`)",
    """CREATE TABLE `message` (`id` text PRIMARY KEY, `session_id` text NOT NULL,
    `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL,
    CONSTRAINT `fk_message_session_id_session_id_fk` FOREIGN KEY (`session_id`)
        REFERENCES `session`(`id`) ON DELETE CASCADE)""",
    "CREATE INDEX `message_session_time_created_id_idx` ON `message` "
    "(`session_id`,`time_created`,`id`)",
    """CREATE TABLE `part` (`id` text PRIMARY KEY, `message_id` text NOT NULL,
    `session_id` text NOT NULL, `time_created` integer NOT NULL, `time_updated` integer NOT NULL,
    `data` text NOT NULL,
    CONSTRAINT `fk_part_message_id_message_id_fk` FOREIGN KEY (`message_id`)
        REFERENCES `message`(`id`) ON DELETE CASCADE)""",
    "CREATE INDEX `part_session_idx` ON `part` (`session_id`)",
    "CREATE INDEX `part_message_id_id_idx` ON `part` (`message_id`,`id`)",
    """CREATE TABLE `todo` (`session_id` text NOT NULL, `content` text NOT NULL,
    `status` text NOT NULL, `priority` text NOT NULL, `position` integer NOT NULL,
    `time_created` integer NOT NULL, `time_updated` integer NOT NULL,
    CONSTRAINT `todo_pk` PRIMARY KEY(`session_id`, `position`),
    CONSTRAINT `fk_todo_session_id_session_id_fk` FOREIGN KEY (`session_id`)
        REFERENCES `session`(`id`) ON DELETE CASCADE)""",
    "CREATE INDEX `todo_session_idx` ON `todo` (`session_id`)",
    """CREATE TABLE `permission` (`project_id` text PRIMARY KEY, `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL, `data` text NOT NULL,
    CONSTRAINT `fk_permission_project_id_project_id_fk` FOREIGN KEY (`project_id`)
        REFERENCES `project`(`id`) ON DELETE CASCADE)""",
    """CREATE TABLE `session_share` (`session_id` text PRIMARY KEY, `id` text NOT NULL,
    `secret` text NOT NULL, `url` text NOT NULL, `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL,
    CONSTRAINT `fk_session_share_session_id_session_id_fk` FOREIGN KEY (`session_id`)
        REFERENCES `session`(`id`) ON DELETE CASCADE)""",
    """CREATE TABLE `__drizzle_migrations` (id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash text NOT NULL, created_at numeric)""",
)


def open_like_opencode(path: Path) -> sqlite3.Connection:
    """A connection opened as OpenCode opens its own (research/opencode_sqlite_2026.md §1): WAL,
    synchronous=NORMAL, busy_timeout=5000, foreign_keys=ON; autocommit, explicit transactions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def create_opencode_db(path: Path) -> sqlite3.Connection:
    """Open (creating it with OpenCode 1.2's schema if needed) a database the way OpenCode
    opens its own (open_like_opencode). The caller owns the connection."""
    db = open_like_opencode(path)
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'session'").fetchone():
        db.execute("BEGIN IMMEDIATE")
        for statement in OPENCODE_SQLITE_SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('sim', 0)")
        db.execute("COMMIT")
    return db
