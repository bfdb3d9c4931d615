"""What the commands share: the Fatal error, the engine's flags, the configuration they load, and
typed reads of an indexer's stats. Never runs a command itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from indexer.config import RANGES, Flags, IndexerConfig, default_db_path, parse_setting
from indexer.sources.sqlite import discover_databases

Command = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Fatal(Exception):
    """A fatal error whose message is one line for the user."""


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage", type=Path, help="OpenCode storage root (default: found as documented)"
    )
    p.add_argument(
        "--db", type=Path, help="ocindex DuckDB file (default $XDG_DATA_HOME/ocindex/index.duckdb)"
    )
    p.add_argument(
        "--indexer",
        choices=("v1", "v2"),
        help="force an indexer over the rollout (default: as the rollout says; v2 on a fresh install)",
    )
    add_opencode_db(p)


def add_opencode_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--opencode-db",
        type=Path,
        help="OpenCode's SQLite store (default: $OPENCODE_DB, else opencode*.db beside the "
        "storage folder); read by v2 only",
    )


def flags(args: argparse.Namespace) -> Flags:
    """The flags a command was given; the ones it does not have count as not given."""
    return Flags(
        storage=getattr(args, "storage", None),
        db=getattr(args, "db", None),
        indexer=getattr(args, "indexer", None),
        opencode_db=getattr(args, "opencode_db", None),
    )


def engine_config(args: argparse.Namespace) -> IndexerConfig:
    """The whole configuration of an engine command, on a storage root that exists or beside
    an OpenCode store."""
    config = IndexerConfig.load(flags(args))
    paths = config.paths
    root, source = paths.storage_root, paths.storage_source
    # A store alone (OpenCode 2.x never writes the JSON tree) is enough: the tree is then empty.
    if not root.is_dir() and not any(
        p.is_file() for p in discover_databases(root, paths.opencode_db, paths.opencode_env)
    ):
        raise Fatal(
            f"no OpenCode storage at {root} (from {source}); pass --storage DIR, "
            "or write a demo tree with `ocindex simulate --root DIR`"
        )
    return config


def db_path(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else default_db_path()


def parse_numbers(args: argparse.Namespace) -> None:
    """Parse each numeric flag the command was given against its range in config.RANGES, once:
    argparse keeps them as text, so a bad value is one ConfigError line (exit 2) instead of a
    usage dump, and nan, inf or 1e400 never reach a command."""
    for name in RANGES:
        dest = name.removeprefix("--").replace("-", "_")
        value = getattr(args, dest, None)
        if name.startswith("--") and isinstance(value, str):
            setattr(args, dest, parse_setting(name, value))


def add_day_range(p: argparse.ArgumentParser, tz_help: str) -> None:
    """--since/--until (local days, YYYY-MM-DD) and --tz, as usage and search take them."""
    p.add_argument("--since", type=_date, help="first local day included, YYYY-MM-DD")
    p.add_argument("--until", type=_date, help="last local day included, YYYY-MM-DD")
    p.add_argument("--tz", help=tz_help)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
