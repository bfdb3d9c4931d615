"""The headless commands (simulate, status, index, run, rollback, query, bench), by group.
Never imports the TUI: `tui.cli` adds the dashboard command on top of this parser.

Exit codes: 0 success, 1 fatal error (one clear line, no traceback; for `index` also a discovered
source not read or files left pending, see indexing.EXIT_CODES), 2 usage error or a setting out
of range (one line naming it and what it accepts).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from indexer.arrow_memory import reuse_freed_memory

# Before the commands' imports load pyarrow, whose C++ reads the allocator's choice only then.
reuse_freed_memory()

from indexer.cli.bench import add_bench
from indexer.cli.export import add_export
from indexer.cli.indexing import add_index, add_run
from indexer.cli.options import Command, Fatal, Subparsers, parse_numbers
from indexer.cli.query import add_query
from indexer.cli.search import add_search
from indexer.cli.simulate import add_simulate
from indexer.cli.status import add_rollback, add_status
from indexer.cli.usage import add_usage
from indexer.collector import collect_less
from indexer.config import ConfigError
from indexer.store.database import DatabaseError

__all__ = ["COMMANDS", "Fatal", "build_parser", "main", "run_command"]

COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_index,
    add_run,
    add_status,
    add_rollback,
    add_query,
    add_export,
    add_simulate,
    add_bench,
    add_usage,
    add_search,
)


def build_parser(prog: str = "ocindex") -> tuple[argparse.ArgumentParser, Subparsers]:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Index OpenCode's storage into DuckDB, live, and show it working.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug lines to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser, sub


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command, turning expected failures into one line: exit code 2 for a
    setting out of range, 1 for anything else."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func: Command = args.func
    collect_less()
    reuse_freed_memory()
    try:
        with owner_only_files():
            parse_numbers(args)
            return func(args)
    except ConfigError as exc:
        print(f"ocindex: error: {exc}", file=sys.stderr)
        return 2
    except (Fatal, DatabaseError) as exc:
        print(f"ocindex: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ocindex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ocindex status | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


@contextmanager
def owner_only_files() -> Iterator[None]:
    """Run with the umask tightened to owner-only: the database, its WAL (which DuckDB creates
    anew after every checkpoint) and the rollout file hold the user's prompts. Set before the
    command starts a thread, restored when it returns."""
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    try:
        yield
    finally:
        os.umask(previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args)
