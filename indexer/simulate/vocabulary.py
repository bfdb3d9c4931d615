"""The words simulated sessions are made of (models, repositories, files, sentences, tools) and
the small makers of prose, code, token counts and diffs built on them. Never touches a file."""

from __future__ import annotations

import difflib
import random
from datetime import UTC, datetime
from typing import Any

import orjson

Json = dict[str, Any]

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MODELS = (  # provider, model, USD per token
    ("opencode", "big-pickle", 0.0),
    ("anthropic", "claude-sonnet-4-5", 3e-6),
    ("openai", "gpt-5.1-codex", 1.25e-6),
    ("opencode", "grok-code", 0.0),
)
VERSIONS = ("1.1.36", "1.1.44", "1.1.47", "1.1.51")
USERS = ("dev", "sam", "kai", "mira")
REPOS = ("billing-api", "notes-app", "infra-scripts", "pixel-editor", "weather-cli")
FILES = (
    "src/app.py",
    "src/config.py",
    "src/cli.py",
    "src/cache.py",
    "src/api/routes.ts",
    "tests/test_app.py",
    "README.md",
    "Makefile",
    "web/index.html",
    "docs/setup.md",
)
VERBS = ("add", "fix", "refactor", "document", "test", "speed up", "clean up", "rename", "explain")
THINGS = (
    "the config loader",
    "retry handling",
    "the CLI parser",
    "pagination",
    "the cache layer",
    "error messages",
    "the login flow",
    "the build script",
    "request logging",
)
NOUNS = ("config", "cache", "user", "order", "token", "request", "report", "item", "queue")
SLUG_ADJECTIVES = ("quiet", "brave", "tidy", "swift", "calm", "eager", "kind", "bold")
SLUG_NOUNS = ("garden", "comet", "river", "falcon", "maple", "harbor", "lantern", "otter")
SENTENCES = (
    "I'll {verb} {thing} first.",
    "Looking at `{file}`, {thing} is handled in one place.",
    "The tests in `{file}` only cover the happy path.",
    "Let me read `{file}` next.",
    "Next I'll run the test suite to check nothing else broke.",
    "Done: {thing} now has a clear error path and a test.",
    "Plan: {verb} {thing}, then update `{file}`.",
)
COMMANDS = (
    ("git status --short", "Show working tree status"),
    ("ls -la src", "List sources"),
    ("python -m pytest -q", "Run the test suite"),
    ("npm run build", "Build the bundle"),
)
TOOLS = ("read", "bash", "edit", "grep", "glob", "write", "todowrite", "task")
TOOL_WEIGHTS = (30, 22, 16, 10, 8, 6, 6, 1)
ERRORS = (
    ("MessageAbortedError", "The operation was aborted."),
    ("APIError", "Overloaded"),
    ("UnknownError", "Connection reset by server"),
)


def dump(obj: object) -> bytes:
    """Like JSON.stringify(obj, null, 2): 2-space indent, raw UTF-8, no trailing newline."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def tokens(rng: random.Random | None) -> Json:
    """An assistant message's token counts; all zero while it streams (rng None)."""
    if rng is None:
        return {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    cache = {"read": rng.randint(0, 60_000), "write": rng.choice((0, rng.randint(1, 3_000)))}
    reasoning = rng.choice((0, rng.randint(1, 500)))
    return {
        "input": rng.randint(50, 20_000),
        "output": rng.randint(20, 2_000),
        "reasoning": reasoning,
        "cache": cache,
    }


def prose(rng: random.Random, sentences: int) -> str:
    def sentence() -> str:
        verb, thing, file = rng.choice(VERBS), rng.choice(THINGS), rng.choice(FILES)
        return rng.choice(SENTENCES).format(verb=verb, thing=thing, file=file)

    return " ".join(sentence() for _ in range(sentences))


def task_title(rng: random.Random) -> str:
    return f"{rng.choice(VERBS).title()} {rng.choice(THINGS)}"


def code_lines(rng: random.Random, count: int) -> list[str]:
    def line() -> str:
        noun, other = rng.choice(NOUNS), rng.choice(NOUNS)
        templates = (
            f"def load_{noun}({other}):",
            f"    return {noun}.{other}_id",
            "",
            f"    {noun} = fetch_{noun}({other}, retries={rng.randint(1, 5)})",
            f"# keep {noun} and {other} in sync",
            f"class {noun.title()}Store:",
            f'        raise ValueError("missing {noun}")',
        )
        return rng.choice(templates)

    return [line() for _ in range(count)]


def patch(file: str, before: list[str], after: list[str]) -> tuple[str, int, int]:
    """A unified diff with OpenCode's header, plus the added and deleted line counts."""
    body = list(difflib.unified_diff(before, after, lineterm=""))[2:]
    adds = sum(1 for x in body if x.startswith("+"))
    dels = sum(1 for x in body if x.startswith("-"))
    head = f"Index: {file}\n{'=' * 67}\n--- {file}\t\n+++ {file}\t\n"
    return head + "\n".join(body) + "\n", adds, dels
