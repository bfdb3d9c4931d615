"""Writes realistic OpenCode activity under a storage root, for the demo, tests and benchmarks:
JSON files as OpenCode ≤ 1.1 wrote them, or (SqliteSimulator) OpenCode 1.2's SQLite store beside
the root. Never imports the indexing pipeline or touches the index database; it only writes what
OpenCode writes."""

from __future__ import annotations

import difflib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

Json = dict[str, Any]
_Op = tuple[str, bytes]  # (path relative to the root, the whole new content of the file)
_ToolCall = tuple[Json, str, str, Json]  # input, output, title, metadata

# fmt: off
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MASK48 = (1 << 48) - 1
_CONCURRENT_SESSIONS = 3  # top-level sessions streaming at once, interleaved write by write
_FAULT_RATE = 0.004  # chance per streamed write, when faults are on
_FAULT_KINDS = ("partial_then_completed", "corrupt", "empty", "invalid_utf8", "wrong_top_level",
                "deleted")
_MODELS = (("opencode", "big-pickle", 0.0), ("anthropic", "claude-sonnet-4-5", 3e-6),
           ("openai", "gpt-5.1-codex", 1.25e-6), ("opencode", "grok-code", 0.0))  # USD per token
_VERSIONS = ("1.1.36", "1.1.44", "1.1.47", "1.1.51")
_USERS = ("dev", "sam", "kai", "mira")
_REPOS = ("billing-api", "notes-app", "infra-scripts", "pixel-editor", "weather-cli")
_FILES = ("src/app.py", "src/config.py", "src/cli.py", "src/cache.py", "src/api/routes.ts",
          "tests/test_app.py", "README.md", "Makefile", "web/index.html", "docs/setup.md")
_VERBS = ("add", "fix", "refactor", "document", "test", "speed up", "clean up", "rename", "explain")
_THINGS = ("the config loader", "retry handling", "the CLI parser", "pagination", "the cache layer",
           "error messages", "the login flow", "the build script", "request logging")
_NOUNS = ("config", "cache", "user", "order", "token", "request", "report", "item", "queue")
_SLUG_ADJECTIVES = ("quiet", "brave", "tidy", "swift", "calm", "eager", "kind", "bold")
_SLUG_NOUNS = ("garden", "comet", "river", "falcon", "maple", "harbor", "lantern", "otter")
_SENTENCES = ("I'll {verb} {thing} first.", "Looking at `{file}`, {thing} is handled in one place.",
              "The tests in `{file}` only cover the happy path.", "Let me read `{file}` next.",
              "Next I'll run the test suite to check nothing else broke.",
              "Done: {thing} now has a clear error path and a test.",
              "Plan: {verb} {thing}, then update `{file}`.")
_COMMANDS = (("git status --short", "Show working tree status"), ("ls -la src", "List sources"),
             ("python -m pytest -q", "Run the test suite"), ("npm run build", "Build the bundle"))
_TOOLS = ("read", "bash", "edit", "grep", "glob", "write", "todowrite", "task")
_TOOL_WEIGHTS = (30, 22, 16, 10, 8, 6, 6, 1)
_ERRORS = (("MessageAbortedError", "The operation was aborted."), ("APIError", "Overloaded"),
           ("UnknownError", "Connection reset by server"))
# fmt: on


@dataclass(frozen=True)
class Fault:
    rel_path: str
    kind: str  # one of _FAULT_KINDS
    final_valid: bool  # True when the file ends as valid JSON of the right shape


@dataclass(frozen=True)
class SimulationReport:
    files_written: int  # distinct files created by this call
    writes: int  # total write calls, rewrites included
    rewrites: int
    deleted: tuple[str, ...]
    faults: tuple[Fault, ...]
    seconds: float

    def to_dict(self) -> dict[str, object]:
        faults = [asdict(f) for f in self.faults]
        return {**asdict(self), "deleted": list(self.deleted), "faults": faults}


@dataclass
class _Tally:
    created: int = 0
    writes: int = 0
    rewrites: int = 0
    deleted: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)


@dataclass
class _Project:
    id: str
    worktree: str
    created: int
    git: bool


@dataclass
class _Session:
    id: str
    project: _Project
    directory: str
    parent: str | None
    slug: str
    version: str
    title: str
    agent: str
    model: tuple[str, str, float]  # provider, model, USD per token
    created: int
    patch_style: bool  # newer session_diff entries carry a unified diff instead of before/after
    prompt: str = ""  # the task prompt, for child sessions
    updated: int = 0
    summarized: bool = False
    files: dict[str, list[str]] = field(default_factory=dict)  # file -> current lines
    originals: dict[str, list[str]] = field(default_factory=dict)  # file -> lines before edits
    diffs: dict[str, Json] = field(default_factory=dict)
    todos: list[Json] = field(default_factory=list)
    paths: dict[str, None] = field(default_factory=dict)  # ordered set: deletion picks are seeded


def _dump(obj: object) -> bytes:
    """Like JSON.stringify(obj, null, 2): 2-space indent, raw UTF-8, no trailing newline."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _tokens(rng: random.Random | None) -> Json:
    if rng is None:
        return {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    cache = {"read": rng.randint(0, 60_000), "write": rng.choice((0, rng.randint(1, 3_000)))}
    reasoning = rng.choice((0, rng.randint(1, 500)))
    return {"input": rng.randint(50, 20_000), "output": rng.randint(20, 2_000),
            "reasoning": reasoning, "cache": cache}  # fmt: skip


def _prose(rng: random.Random, sentences: int) -> str:
    def sentence() -> str:
        verb, thing, file = rng.choice(_VERBS), rng.choice(_THINGS), rng.choice(_FILES)
        return rng.choice(_SENTENCES).format(verb=verb, thing=thing, file=file)

    return " ".join(sentence() for _ in range(sentences))


def _task_title(rng: random.Random) -> str:
    return f"{rng.choice(_VERBS).title()} {rng.choice(_THINGS)}"


def _code_lines(rng: random.Random, count: int) -> list[str]:
    def line() -> str:
        noun, other = rng.choice(_NOUNS), rng.choice(_NOUNS)
        templates = (f"def load_{noun}({other}):", f"    return {noun}.{other}_id", "",
                     f"    {noun} = fetch_{noun}({other}, retries={rng.randint(1, 5)})",
                     f"# keep {noun} and {other} in sync", f"class {noun.title()}Store:",
                     f'        raise ValueError("missing {noun}")')  # fmt: skip
        return rng.choice(templates)

    return [line() for _ in range(count)]


def _patch(file: str, before: list[str], after: list[str]) -> tuple[str, int, int]:
    """A unified diff with OpenCode's header, plus the added and deleted line counts."""
    body = list(difflib.unified_diff(before, after, lineterm=""))[2:]
    adds = sum(1 for x in body if x.startswith("+"))
    dels = sum(1 for x in body if x.startswith("-"))
    head = f"Index: {file}\n{'=' * 67}\n--- {file}\t\n+++ {file}\t\n"
    return head + "\n".join(body) + "\n", adds, dels


class OpenCodeSimulator:
    """Plays OpenCode sessions into files: all content comes from one seeded RNG and a virtual
    clock, so the same seed writes the same bytes in the same order."""

    def __init__(self, root: Path, seed: int = 0, faults: bool = False,
                 clock_start_ms: int = 1_767_225_600_000) -> None:  # fmt: skip
        self._root = Path(root)
        self._rng = random.Random(seed)
        self._frng = random.Random(f"faults:{seed}")  # fault decisions do not disturb content
        self._faults = faults
        self._now = clock_start_ms
        self._id_ms, self._id_count = -1, 0
        self._made = 0  # sessions allocated so far
        self._limit: int | None = None  # session budget in --once mode, children included
        self._files: dict[str, bytes] = {}  # the ledger: last bytes of every existing file
        self._lock = threading.Lock()  # expected_files() may be called while run() is writing
        self._dirs: set[str] = set()
        self._settled: list[str] = []  # files of finished sessions: candidates for deletion
        self._pending: dict[str, tuple[int, bytes]] = {}  # torn file -> (due write no., bytes)
        self._fault_paths: set[str] = set()
        self._tally = _Tally()
        self._on_write: Callable[[str], None] | None = None
        self._live: Iterator[None] | None = None
        self._home = home = f"/home/{self._rng.choice(_USERS)}"
        self._projects = [_Project("global", home, self._now - 86_400_000, False)]
        for repo in self._rng.sample(_REPOS, 3):  # a few git projects: 40-hex root-commit ids
            created = self._now - self._rng.randint(1, 90) * 86_400_000
            sha = f"{self._rng.getrandbits(160):040x}"
            self._projects.append(_Project(sha, f"{home}/src/{repo}", created, True))

    # ---- public API -------------------------------------------------------------------------

    def write_sessions(self, sessions: int) -> SimulationReport:
        """--once mode: write `sessions` whole sessions (with the in-place rewrite sequences) as
        fast as possible and return."""
        started = self._begin(None)
        self._limit = self._made + sessions
        try:
            for _ in self._drive(self._limit):
                pass
            self._flush_pending(everything=True)
        finally:
            self._limit = None
        return self._report(started)

    def run(self, rate_files_per_s: float, duration_s: float, stop: threading.Event | None = None,
            on_write: Callable[[str], None] | None = None) -> SimulationReport:  # fmt: skip
        """Live mode: keep writing activity (new sessions, messages, parts streaming, rewrites)
        at about `rate` file writes per second for `duration` seconds or until `stop` is set.
        rate <= 0 means as fast as possible. on_write(rel_path) is called after each write
        completes, and after each deletion (tests use it as a ledger)."""
        started = self._begin(on_write)
        deadline = started + max(duration_s, 0.0)
        if self._live is None:  # later calls carry on with the same sessions
            self._live = self._drive(None)
        try:
            while stop is None or not stop.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                if rate_files_per_s > 0:  # sleep only to hold the rate, never per file
                    wait = started + self._tally.writes / rate_files_per_s - now
                    if wait > 0:
                        pause = min(wait, deadline - now)
                        if stop is not None:
                            stop.wait(pause)
                        else:
                            time.sleep(pause)
                        continue
                next(self._live)
            self._flush_pending(everything=True)
        finally:
            self._on_write = None
        return self._report(started)

    def expected_files(self) -> dict[str, bytes]:
        """rel_path -> final bytes of every file that should exist now (the ledger of the last
        write of each file that was not deleted), so tests can compare the index with the truth."""
        with self._lock:
            return dict(self._files)

    # ---- writing ------------------------------------------------------------------------------

    def _begin(self, on_write: Callable[[str], None] | None) -> float:
        self._tally, self._on_write = _Tally(), on_write
        return time.monotonic()

    def _report(self, started: float) -> SimulationReport:
        t = self._tally
        seconds = round(time.monotonic() - started, 6)
        return SimulationReport(
            t.created, t.writes, t.rewrites, tuple(t.deleted), tuple(t.faults), seconds
        )

    def _write(self, rel: str, data: bytes) -> None:
        """Like OpenCode's Storage.write: mkdir -p, then truncate and write in place."""
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"refusing to write outside the storage root: {rel}")
        folder = rel.rpartition("/")[0]
        if folder not in self._dirs:  # remember made folders: one mkdir -p per folder is enough
            os.makedirs(os.path.join(self._root, folder), exist_ok=True)
            self._dirs.add(folder)
        fd = os.open(os.path.join(self._root, rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self._tally.writes += 1
        if rel in self._files:
            self._tally.rewrites += 1
        else:
            self._tally.created += 1
        with self._lock:
            self._files[rel] = data
        if self._on_write is not None:
            self._on_write(rel)

    def _apply(self, rel: str, data: bytes) -> None:
        self._flush_pending(everything=False)
        self._pending.pop(rel, None)  # a newer write supersedes a torn one
        if self._faults and self._frng.random() < _FAULT_RATE:
            kind = self._frng.choice(_FAULT_KINDS)
            if kind == "partial_then_completed" and len(data) > 1:
                # A reader can catch the file torn; the full content lands a few writes later.
                self._write(rel, data[: self._frng.randint(1, len(data) - 1)])
                self._pending[rel] = (self._tally.writes + self._frng.randint(1, 40), data)
                self._fault_paths.add(rel)
                self._tally.faults.append(Fault(rel, kind, True))
                return
            if kind == "deleted":
                self._delete_settled_file()
            elif kind != "partial_then_completed":
                self._write_broken_sibling(kind, rel, data)
        self._write(rel, data)

    def _flush_pending(self, everything: bool) -> None:
        for rel, (due, data) in list(self._pending.items()):
            if everything or due <= self._tally.writes:
                del self._pending[rel]
                self._write(rel, data)

    def _delete_settled_file(self) -> None:
        while self._settled:
            i = self._frng.randrange(len(self._settled))
            rel = self._settled[i]
            self._settled[i] = self._settled[-1]
            self._settled.pop()
            if rel in self._pending or rel in self._fault_paths or rel not in self._files:
                continue
            os.remove(os.path.join(self._root, rel))
            with self._lock:
                del self._files[rel]
            self._tally.deleted.append(rel)
            self._tally.faults.append(Fault(rel, "deleted", False))
            if self._on_write is not None:
                self._on_write(rel)
            return

    def _write_broken_sibling(self, kind: str, rel: str, data: bytes) -> None:
        """A permanently broken file next to `rel`, under a fresh id: nothing rewrites it."""
        folder, _, name = rel.rpartition("/")
        stem = name.removesuffix(".json")
        if stem[3:4] != "_":  # project files have no id prefix to mint a sibling from
            return
        new_id = self._id(stem[:3], descending=stem.startswith("ses"), rng=self._frng)
        body = data.replace(stem.encode(), new_id.encode())
        if kind == "corrupt":
            body = body[: len(body) // 2]  # a torn write that never completed
        elif kind == "empty":
            body = b""
        elif kind == "invalid_utf8":
            body = body.replace(b'": "', b'": "\xff\xfe', 1) if b'": "' in body else b"\xff" + body
        else:  # wrong_top_level: arrays where objects belong and the other way round
            loaded = orjson.loads(body)
            body = _dump({"items": loaded} if isinstance(loaded, list) else [loaded])
        sibling = f"{folder}/{new_id}.json"
        self._write(sibling, body)
        self._fault_paths.add(sibling)
        self._tally.faults.append(Fault(sibling, kind, False))

    # ---- ids and time -------------------------------------------------------------------------

    def _tick(self, low_ms: int, high_ms: int) -> int:
        self._now += self._rng.randint(low_ms, high_ms)
        return self._now

    def _id(self, prefix: str, descending: bool = False, rng: random.Random | None = None) -> str:
        """OpenCode's id: 6 bytes of (ms * 4096 + counter), NOTed for sessions, + 14 base62."""
        if self._now != self._id_ms:
            self._id_ms, self._id_count = self._now, 0
        self._id_count += 1
        value = (self._now * 4096 + self._id_count) & _MASK48
        if descending:
            value = ~value & _MASK48
        tail = "".join((rng or self._rng).choices(_BASE62, k=14))
        return f"{prefix}_{value:012x}{tail}"

    # ---- the activity stream ------------------------------------------------------------------

    def _drive(self, limit: int | None) -> Iterator[None]:
        """Interleave a few sessions write by write; yields after each applied write."""
        active: list[Iterator[_Op]] = []
        while True:
            while len(active) < _CONCURRENT_SESSIONS and (limit is None or self._made < limit):
                active.append(self._session(self._new_session(None)))
            if not active:
                return
            i = self._rng.randrange(len(active))
            op = next(active[i], None)
            if op is None:
                del active[i]
                continue
            self._apply(*op)
            yield

    def _new_session(self, parent: _Session | None) -> _Session:
        rng = self._rng
        self._made += 1
        self._tick(*((1, 2_000) if parent else (1_000, 600_000)))  # subagents start at once
        project = parent.project if parent else rng.choices(self._projects, (3, 2, 2, 1))[0]
        directory = project.worktree if project.git else f"{self._home}/{rng.choice(_REPOS)}"
        sid = self._id("ses", descending=True)
        slug = f"{rng.choice(_SLUG_ADJECTIVES)}-{rng.choice(_SLUG_NOUNS)}"
        title = f"New session - {_iso(self._now)}"
        agent = rng.choice(("general", "explore") if parent else ("build",) * 4 + ("plan",))
        version, model = rng.choice(_VERSIONS), rng.choice(_MODELS)
        if parent is not None:  # a subagent's session inherits where and how it runs
            return _Session(sid, project, parent.directory, parent.id, slug, parent.version,
                            title, agent, parent.model, self._now, parent.patch_style)  # fmt: skip
        return _Session(sid, project, directory, None, slug, version, title, agent, model,
                        self._now, rng.random() < 0.3)  # fmt: skip

    def _emit(self, s: _Session, rel: str, doc: object) -> _Op:
        s.paths[rel] = None
        return rel, _dump(doc)

    def _session_op(self, s: _Session) -> _Op:
        doc: Json = {"id": s.id, "slug": s.slug, "version": s.version}
        doc |= {"projectID": s.project.id, "directory": s.directory}
        if s.parent:
            doc["parentID"] = s.parent
        doc |= {"title": s.title, "time": {"created": s.created, "updated": s.updated}}
        if s.summarized:
            adds = sum(d["additions"] for d in s.diffs.values())
            dels = sum(d["deletions"] for d in s.diffs.values())
            doc["summary"] = {"additions": adds, "deletions": dels, "files": len(s.diffs)}
        return self._emit(s, f"session/{s.project.id}/{s.id}.json", doc)

    def _project_op(self, p: _Project) -> _Op:
        times = {"created": p.created, "updated": self._now}
        doc: Json = {"id": p.id, "worktree": p.worktree, "sandboxes": [], "time": times}
        if p.git:
            doc["time"]["initialized"] = p.created + 4_000
            doc["vcs"] = "git"
        return f"project/{p.id}.json", _dump(doc)

    def _part(self, s: _Session, mid: str, pid: str, body: Json) -> _Op:
        doc = {"id": pid, "sessionID": s.id, "messageID": mid, **body}
        return self._emit(s, f"part/{mid}/{pid}.json", doc)

    def _session(self, s: _Session) -> Iterator[_Op]:
        if s.parent is None:
            yield self._project_op(s.project)  # OpenCode touches the project's time.updated
        yield self._session_op(s)
        for turn in range(1 if s.parent else self._rng.randint(3, 6)):
            yield from self._turn(s, first=turn == 0)
            self._tick(5_000, 300_000)  # the user reads the answer and thinks
        self._settled.extend(s.paths)

    def _turn(self, s: _Session, first: bool) -> Iterator[_Op]:
        rng = self._rng
        created = self._tick(500, 60_000)
        uid = self._id("msg")  # ids carry their creation time, as OpenCode's do
        user: Json = {"id": uid, "sessionID": s.id, "role": "user", "time": {"created": created}}
        tail = {"agent": s.agent, "model": {"providerID": s.model[0], "modelID": s.model[1]}}
        yield self._emit(s, f"message/{s.id}/{uid}.json", user | tail)
        prompt = s.prompt if first and s.parent else _prose(rng, rng.randint(1, 3)).lower()
        yield self._part(s, uid, self._id("prt"), {"type": "text", "text": prompt})
        if rng.random() < 0.1:  # an attached file (@mention)
            file = rng.choice(_FILES)
            url = f"file://{s.directory}/{file}"
            attached = {"type": "file", "mime": "text/plain", "filename": file, "url": url}
            yield self._part(s, uid, self._id("prt"), attached)
        if first and s.parent is None:
            s.title, s.updated = _task_title(rng), self._now  # OpenCode titles it after the prompt
            yield self._session_op(s)
        steps = rng.randint(2, 7)
        for step in range(steps):
            if (yield from self._assistant(s, uid, final=step == steps - 1)):
                break  # the error ended the turn
        summary = {"title": _task_title(rng), "diffs": []}
        yield self._emit(s, f"message/{s.id}/{uid}.json", user | {"summary": summary} | tail)
        if s.diffs:
            yield self._emit(s, f"session_diff/{s.id}.json", list(s.diffs.values()))
        s.summarized, s.updated = True, self._now
        yield self._session_op(s)

    def _assistant(self, s: _Session, parent_id: str, final: bool) -> Generator[_Op, None, bool]:
        """One step: step-start, reasoning, text, tools, step-finish. Returns True on error."""
        rng = self._rng
        times = {"created": self._tick(20, 800)}
        mid = self._id("msg")
        rel = f"message/{s.id}/{mid}.json"
        # Key order as in OpenCode 1.1 files: an error goes between `time` and `parentID`.
        head: Json = {"id": mid, "sessionID": s.id, "role": "assistant", "time": times}
        body: Json = {"parentID": parent_id, "modelID": s.model[1], "providerID": s.model[0]}
        body |= {"mode": s.agent, "agent": s.agent}
        body |= {"path": {"cwd": s.directory, "root": s.project.worktree}}
        body |= {"cost": 0, "tokens": _tokens(None)}
        yield self._emit(s, rel, head | body)
        snapshot = f"{rng.getrandbits(160):040x}"
        yield self._part(s, mid, self._id("prt"), {"type": "step-start", "snapshot": snapshot})
        if rng.random() < 0.5:
            hidden = rng.random() < 0.5  # many providers stream no reasoning text at all
            yield from self._stream(s, mid, "reasoning", "" if hidden else _prose(rng, 3))
        if rng.random() < 0.03:
            times["completed"] = self._tick(1_000, 30_000)
            name, message = rng.choice(_ERRORS)
            data: Json = {"message": message}
            if name == "APIError":
                data |= {"statusCode": 529, "isRetryable": True}
            yield self._emit(s, rel, head | {"error": {"name": name, "data": data}} | body)
            return True
        if final or rng.random() < 0.6:
            yield from self._stream(s, mid, "text", "\n" + _prose(rng, rng.randint(1, 5)))
        edited: list[str] = []
        for _ in range(0 if final else rng.choices((1, 2, 3), (5, 3, 2))[0]):
            yield from self._tool(s, mid, self._pick_tool(s), edited)
        finish = "stop" if final else "tool-calls"
        tokens = _tokens(rng)
        cost = round(max(s.model[2] * (tokens["input"] + 4 * tokens["output"]), 0.001), 6)
        cost_value = cost if s.model[2] else 0
        after = f"{rng.getrandbits(160):040x}"
        finished = {"type": "step-finish", "reason": finish, "snapshot": after}
        yield self._part(s, mid, self._id("prt"), finished | {"cost": cost_value, "tokens": tokens})
        if edited:
            patched = {"type": "patch", "hash": snapshot, "files": edited}
            yield self._part(s, mid, self._id("prt"), patched)
        body |= {"cost": cost_value, "tokens": tokens}
        yield self._emit(s, rel, head | body)  # tokens and cost land first...
        times["completed"] = self._tick(5, 300)
        yield self._emit(s, rel, head | body | {"finish": finish})  # ...then finish and completed
        return False

    def _stream(self, s: _Session, mid: str, kind: str, text: str) -> Iterator[_Op]:
        """A text or reasoning part growing by deltas, rewritten whole after each one."""
        pid, start = self._id("prt"), self._tick(5, 200)
        words, shown = text.split(" "), 0
        yield self._part(s, mid, pid, {"type": kind, "text": "", "time": {"start": start}})
        while shown < len(words) and text:
            shown += self._rng.randint(3, 12)
            self._tick(30, 800)
            partial = " ".join(words[:shown])
            yield self._part(s, mid, pid, {"type": kind, "text": partial, "time": {"start": start}})
        end = {"start": start, "end": self._tick(1, 200)}
        yield self._part(s, mid, pid, {"type": kind, "text": text, "time": end})

    def _pick_tool(self, s: _Session) -> str:
        name = self._rng.choices(_TOOLS, _TOOL_WEIGHTS)[0]
        no_budget = self._limit is not None and self._made >= self._limit
        return "read" if name == "task" and (s.parent or no_budget) else name

    def _tool(self, s: _Session, mid: str, name: str, edited: list[str]) -> Iterator[_Op]:
        """A tool part going pending -> running -> completed (or error), in place."""
        rng, pid = self._rng, self._id("prt")
        # Allocate the child before the first yield: no other session can take the budget between.
        child = self._new_session(s) if name == "task" else None
        if s.model[0] == "anthropic":
            call = "toolu_" + "".join(rng.choices(_BASE62, k=24))
        else:
            call = f"call_{rng.getrandbits(96):024x}"
        head = {"type": "tool", "callID": call, "tool": name}
        pending = {"status": "pending", "input": {}, "raw": ""}
        yield self._part(s, mid, pid, head | {"state": pending})
        start = self._tick(50, 2_000)
        inp, output, title, meta = self._tool_io(s, name, child)
        running = {"status": "running", "input": inp, "time": {"start": start}}
        yield self._part(s, mid, pid, head | {"state": running})
        if child is not None:
            yield from self._session(child)  # the subagent's session is written while task runs
        if name == "todowrite":
            yield self._emit(s, f"todo/{s.id}.json", s.todos)
        span = {"start": start, "end": self._tick(10, 20_000)}
        if name in ("bash", "read", "grep") and rng.random() < 0.06:
            error = f"No such file or directory: {inp.get('filePath', s.directory)}"
            state = {"status": "error", "input": inp, "error": error, "time": span}
        else:
            state = {"status": "completed", "input": inp, "output": output, "title": title}
            state |= {"metadata": meta, "time": span}
            if name in ("edit", "write"):
                edited.append(inp["filePath"])
        yield self._part(s, mid, pid, head | {"state": state})

    def _lines(self, s: _Session, file: str) -> list[str]:
        return s.files.setdefault(file, _code_lines(self._rng, self._rng.randint(8, 40)))

    def _tool_io(self, s: _Session, name: str, child: _Session | None) -> _ToolCall:
        """Input, output, title and metadata for one call, shaped like OpenCode's tools."""
        rng = self._rng
        inp: Json
        meta: Json
        file = rng.choice(_FILES)
        path = f"{s.directory}/{file}"
        if name == "read":
            lines = self._lines(s, file)
            numbered = "".join(f"{n:05d}| {line}\n" for n, line in enumerate(lines, 1))
            out = f"<file>\n{numbered}\n(End of file - total {len(lines)} lines)\n</file>"
            meta = {"preview": "\n".join(lines[:20]), "truncated": len(lines) > 20}
            return {"filePath": path}, out, file, meta
        if name == "bash":
            command, desc = rng.choice(_COMMANDS)
            out = "".join(f" M {f}\n" for f in rng.sample(_FILES, 3))
            if "pytest" in command:
                out = f"{rng.randint(3, 90)} passed in {rng.uniform(0.2, 9):.2f}s\n"
            meta = {"output": out, "exit": 0, "description": desc, "truncated": False}
            return {"command": command, "description": desc}, out, desc, meta
        if name in ("grep", "glob"):
            hits = rng.sample(_FILES, rng.randint(1, 4))
            pattern = rng.choice(_NOUNS) if name == "grep" else "**/*.py"
            out = f"Found {len(hits)} matches\n" + "\n".join(f"{s.directory}/{f}" for f in hits)
            meta = {"matches" if name == "grep" else "count": len(hits), "truncated": False}
            return {"pattern": pattern, "path": s.directory}, out, pattern, meta
        if name == "todowrite":
            self._advance_todos(s)
            todos = [dict(t) for t in s.todos]
            left = sum(t["status"] != "completed" for t in todos)
            return {"todos": todos}, _dump(todos).decode(), f"{left} todos", {"todos": todos}
        if name == "task" and child is not None:
            desc = _task_title(rng)
            child.title, child.prompt = f"{desc} (@{child.agent} subagent)", _prose(rng, 3)
            out = f"{_prose(rng, 2)}\n\n<task_metadata>\nsession_id: {child.id}\n</task_metadata>"
            inp = {"description": desc, "prompt": child.prompt, "subagent_type": child.agent}
            return inp, out, desc, {"sessionId": child.id, "summary": []}
        existed = name == "edit" or file in s.files  # edit and write change the session's diff
        before = list(self._lines(s, file)) if existed else []
        after = list(before)
        at = rng.randint(0, len(after))
        after[at : at + 1] = _code_lines(rng, rng.randint(1, 3))
        s.files[file] = after
        self._record_diff(s, file, before, after)
        patch = _patch(file, before, after)[0]
        if name == "edit":
            old, new = "\n".join(before[at : at + 1]), "\n".join(after[at : at + 1])
            inp = {"filePath": path, "oldString": old, "newString": new}
            meta = {"diagnostics": {}, "diff": patch, "truncated": False}
            return inp, "Edit applied successfully.", file, meta
        meta = {"diagnostics": {}, "filepath": path, "exists": existed, "truncated": False}
        inp = {"content": "\n".join(after), "filePath": path}
        return inp, "Wrote file successfully.", file, meta

    def _record_diff(self, s: _Session, file: str, before: list[str], after: list[str]) -> None:
        original = s.originals.setdefault(file, before)
        patch, adds, dels = _patch(file, original, after)
        status = "added" if not original else "modified"
        entry: Json = {"file": file}
        if s.patch_style:
            entry["patch"] = patch
        else:
            entry |= {"before": "\n".join(original), "after": "\n".join(after)}
        s.diffs[file] = entry | {"additions": adds, "deletions": dels, "status": status}

    def _advance_todos(self, s: _Session) -> None:
        """First call plans a list; later calls finish one item and start the next."""
        rng = self._rng
        if not s.todos:
            for n in range(1, rng.randint(3, 6) + 1):
                priority = rng.choice(("high", "medium", "low"))
                todo = {"content": _task_title(rng), "status": "pending", "priority": priority}
                s.todos.append(todo | {"id": str(n)})
        for todo in s.todos:
            if todo["status"] == "in_progress":
                todo["status"] = "completed"
            elif todo["status"] == "pending":
                todo["status"] = "in_progress"
                break


# ---- OpenCode 1.2's SQLite store -------------------------------------------------------------

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

_SESSION_COLUMNS = ("project_id", "parent_id", "slug", "directory", "title", "version",
                    "share_url", "summary_additions", "summary_deletions", "summary_files",
                    "time_created", "time_updated")  # fmt: skip


def create_opencode_db(path: Path) -> sqlite3.Connection:
    """Open (creating it with OpenCode 1.2's schema if needed) a database the way OpenCode
    opens its own: WAL, synchronous=NORMAL, foreign keys on. The caller owns the connection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'session'").fetchone():
        db.execute("BEGIN IMMEDIATE")
        for statement in OPENCODE_SQLITE_SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('sim', 0)")
        db.execute("COMMIT")
    return db


class SqliteSimulator(OpenCodeSimulator):
    """Plays the same sessions as OpenCodeSimulator into OpenCode 1.2's SQLite store, written
    the way OpenCode writes it: one transaction per update, upserts keyed by id (parts and
    messages updated in place, time_updated bumped each time), the todo list replaced in one
    transaction, finished sessions now and then deleted with their cascade (foreign keys on),
    and a passive WAL checkpoint every `checkpoint_every` writes. session_diff files stay JSON
    under the storage root. time_created/time_updated come from the simulator's clock, so the
    same seed writes the same rows.

    on_write(key) gets `<table>/<id>` for a row, `session_diff/<id>.json` for a file.
    """

    def __init__(self, root: Path, seed: int = 0, db_path: Path | None = None,
                 delete_share: float = 0.2, checkpoint_every: int = 200,
                 clock_start_ms: int = 1_767_225_600_000) -> None:  # fmt: skip
        super().__init__(root, seed=seed, faults=False, clock_start_ms=clock_start_ms)
        self.db_path = Path(db_path) if db_path else Path(root).parent / "opencode.db"
        self._drng = random.Random(f"deletes:{seed}")  # deletions do not disturb content
        self._delete_share = delete_share
        self._checkpoint_every = max(1, checkpoint_every)
        self._rows: dict[str, bytes] = {}  # "<table>/<id>" -> the record as OpenCode holds it
        self._by_session: dict[str, set[str]] = {}
        self._parents: dict[str, str | None] = {}
        self._next_settled = 0
        self._db: sqlite3.Connection | None = create_opencode_db(self.db_path)
        self.deleted_sessions: list[str] = []
        self.checkpoints = 0
        self.last_time_updated = 0
        """time_updated of the latest row write (the benchmark matches commits against it)."""

    def close(self) -> None:
        """Close the connection (SQLite then checkpoints and removes the -wal, as OpenCode's
        exit does)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> SqliteSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def expected_rows(self) -> dict[str, bytes]:
        """`<table>/<id>` -> the JSON of every row that should exist now (a todo key holds the
        session's whole list), so tests can compare the index with the truth."""
        with self._lock:
            return dict(self._rows)

    # ---- writing ------------------------------------------------------------------------------

    def _write(self, rel: str, data: bytes) -> None:
        top, _, rest = rel.partition("/")
        if top == "session_diff":
            super()._write(rel, data)
        else:
            key, record = self._upsert(top, rest, orjson.loads(data))
            self._tally.writes += 1
            with self._lock:
                if key in self._rows:
                    self._tally.rewrites += 1
                else:
                    self._tally.created += 1
                if record is None:
                    self._rows.pop(key, None)
                else:
                    self._rows[key] = record
            if self._on_write is not None:
                self._on_write(key)
        if self._tally.writes % self._checkpoint_every == 0:
            self._checkpoint()
        self._delete_finished()

    def _checkpoint(self) -> None:
        assert self._db is not None
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1

    def _upsert(self, top: str, rest: str, doc: Any) -> tuple[str, bytes | None]:
        """Write one record in one transaction; return its row key and what it now holds."""
        db = self._db
        assert db is not None, "the simulator is closed"
        now = self._now
        self.last_time_updated = now
        name = rest.rpartition("/")[2].removesuffix(".json")
        if top == "project":
            t = doc.get("time", {})
            sandboxes = orjson.dumps(doc.get("sandboxes", [])).decode()
            db.execute(
                "INSERT INTO project (id, worktree, vcs, name, time_created, time_updated, "
                "time_initialized, sandboxes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET worktree = excluded.worktree, vcs = excluded.vcs, "
                "name = excluded.name, time_updated = excluded.time_updated, "
                "time_initialized = excluded.time_initialized, sandboxes = excluded.sandboxes",
                [doc["id"], doc.get("worktree", "/"), doc.get("vcs"), doc.get("name"),
                 t.get("created", now), now, t.get("initialized"), sandboxes],
            )  # fmt: skip
            doc["time"] = {**t, "updated": now}
            return f"project/{doc['id']}", _dump(doc)
        if top == "session":
            sid = doc["id"]
            doc["time"] = {**doc.get("time", {}), "updated": now}  # Session.update stamps it
            summary = doc.get("summary") or {}
            values = (doc["projectID"], doc.get("parentID"), doc.get("slug", ""),
                      doc.get("directory", ""), doc.get("title", ""), doc.get("version", ""),
                      (doc.get("share") or {}).get("url"), summary.get("additions"),
                      summary.get("deletions"), summary.get("files"),
                      doc["time"].get("created", now), now)  # fmt: skip
            updates = ", ".join(
                f"{c} = excluded.{c}" for c in _SESSION_COLUMNS if c != "time_created"
            )
            db.execute(
                f"INSERT INTO session (id, {', '.join(_SESSION_COLUMNS)}) "
                f"VALUES (?{', ?' * len(_SESSION_COLUMNS)}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                [sid, *values],
            )
            self._parents.setdefault(sid, doc.get("parentID"))
            return f"session/{sid}", _dump(doc)
        if top == "todo":
            sid = name
            db.execute("BEGIN IMMEDIATE")  # Todo.update: delete and insert, one transaction
            try:
                db.execute("DELETE FROM todo WHERE session_id = ?", [sid])
                db.executemany(
                    "INSERT INTO todo (session_id, content, status, priority, position, "
                    "time_created, time_updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            sid,
                            t.get("content", ""),
                            t.get("status", ""),
                            t.get("priority", ""),
                            i,
                            now,
                            now,
                        )
                        for i, t in enumerate(doc)
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._by_session.setdefault(sid, set()).add(f"todo/{sid}")
            return f"todo/{sid}", (_dump(doc) if doc else None)
        # message/<ses>/<msg>.json and part/<msg>/<prt>.json: the JSON without its ids in `data`
        rid, sid = doc["id"], doc["sessionID"]
        data = orjson.dumps(
            {k: v for k, v in doc.items() if k not in ("id", "sessionID", "messageID")}
        )
        created = (doc.get("time") or {}).get("created", now) if top == "message" else now
        if top == "message":
            db.execute(
                "INSERT INTO message (id, session_id, time_created, time_updated, data) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "time_updated = excluded.time_updated, data = excluded.data",
                [rid, sid, created, now, data.decode()],
            )
        else:
            db.execute(
                "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "time_updated = excluded.time_updated, data = excluded.data",
                [rid, doc["messageID"], sid, created, now, data.decode()],
            )
        key = f"{top}/{rid}"
        self._by_session.setdefault(sid, set()).add(key)
        return key, _dump(doc)

    def _delete_finished(self) -> None:
        """Now and then (seeded), delete a finished top-level session as OpenCode's
        Session.remove does: its children too, everything else by cascade."""
        while self._next_settled < len(self._settled):
            rel = self._settled[self._next_settled]
            self._next_settled += 1
            top, _, rest = rel.partition("/")
            if top != "session" or rest.count("/") != 1:
                continue
            sid = rest.rpartition("/")[2].removesuffix(".json")
            if self._parents.get(sid, "") is None and self._drng.random() < self._delete_share:
                self.delete_session(sid)

    def delete_session(self, sid: str) -> list[str]:
        """Delete a session and its child sessions; messages, parts and todos go by cascade.
        Its session_diff file is removed too. Returns the deleted session ids."""
        db = self._db
        assert db is not None, "the simulator is closed"
        doomed, frontier = [sid], [sid]
        while frontier:
            children = [c for c, p in self._parents.items() if p in frontier]
            doomed += children
            frontier = children
        db.execute("BEGIN IMMEDIATE")
        try:
            marks = ", ".join("?" * len(doomed))
            db.execute(f"DELETE FROM session WHERE id IN ({marks})", doomed)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for gone in doomed:
            self._parents.pop(gone, None)
            with self._lock:
                self._rows.pop(f"session/{gone}", None)
                for key in self._by_session.pop(gone, set()):
                    self._rows.pop(key, None)
                diff = f"session_diff/{gone}.json"
                had_diff = self._files.pop(diff, None) is not None
            if had_diff:
                os.remove(os.path.join(self._root, diff))
            self.deleted_sessions.append(gone)
            self._tally.deleted.append(f"session/{gone}")
            if self._on_write is not None:
                self._on_write(f"session/{gone}")
        return doomed
