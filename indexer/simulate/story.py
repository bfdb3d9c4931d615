"""The session story: what OpenCode does (sessions, turns, messages, parts, tools, todos, diffs)
as a deterministic stream of Write and Settled operations. Never writes anything itself."""

from __future__ import annotations

import random
from collections.abc import Generator, Iterator
from typing import NamedTuple

from indexer.simulate.session import Project, Session
from indexer.simulate.tools import tool_call
from indexer.simulate.vocabulary import (
    BASE62,
    ERRORS,
    FILES,
    MODELS,
    REPOS,
    SLUG_ADJECTIVES,
    SLUG_NOUNS,
    TOOL_WEIGHTS,
    TOOLS,
    USERS,
    VERSIONS,
    Json,
    dump,
    iso,
    prose,
    task_title,
    tokens,
)

MASK48 = (1 << 48) - 1
CONCURRENT_SESSIONS = 3  # top-level sessions streaming at once, interleaved write by write
CLOCK_START_MS = 1_767_225_600_000


class Write(NamedTuple):
    """The whole new content of one file, as OpenCode writes it."""

    rel_path: str
    data: bytes


class Settled(NamedTuple):
    """A session has finished: nothing rewrites these files any more."""

    rel_paths: tuple[str, ...]


Op = Write | Settled


class SessionStory:
    """Plays OpenCode sessions from one seeded RNG and a virtual clock: the same seed gives the
    same operations in the same order. Used by one thread at a time."""

    def __init__(self, seed: int = 0, clock_start_ms: int = CLOCK_START_MS) -> None:
        self._rng = random.Random(seed)
        self.now_ms = clock_start_ms
        """The virtual clock: every time in the content, and OpenCode's row stamps."""
        self._id_ms, self._id_count = -1, 0
        self.made = 0
        """Sessions allocated so far, children included."""
        self.budget: int | None = None
        """drive() stops once `made` reaches it; None plays on forever."""
        self._home = home = f"/home/{self._rng.choice(USERS)}"
        self._projects = [Project("global", home, self.now_ms - 86_400_000, False)]
        for repo in self._rng.sample(REPOS, 3):  # a few git projects: 40-hex root-commit ids
            created = self.now_ms - self._rng.randint(1, 90) * 86_400_000
            sha = f"{self._rng.getrandbits(160):040x}"
            self._projects.append(Project(sha, f"{home}/src/{repo}", created, True))

    def drive(self) -> Iterator[Op]:
        """Interleave a few sessions write by write, until the budget is spent."""
        active: list[Iterator[Op]] = []
        while True:
            while len(active) < CONCURRENT_SESSIONS and (
                self.budget is None or self.made < self.budget
            ):
                active.append(self._session(self._new_session(None)))
            if not active:
                return
            i = self._rng.randrange(len(active))
            op = next(active[i], None)
            while isinstance(op, Settled):  # not a write: the same session carries on
                yield op
                op = next(active[i], None)
            if op is None:
                del active[i]
                continue
            yield op

    def mint_id(
        self, prefix: str, descending: bool = False, rng: random.Random | None = None
    ) -> str:
        """OpenCode's id: 6 bytes of (ms * 4096 + counter), NOTed for sessions, + 14 base62."""
        if self.now_ms != self._id_ms:
            self._id_ms, self._id_count = self.now_ms, 0
        self._id_count += 1
        value = (self.now_ms * 4096 + self._id_count) & MASK48
        if descending:
            value = ~value & MASK48
        tail = "".join((rng or self._rng).choices(BASE62, k=14))
        return f"{prefix}_{value:012x}{tail}"

    def _tick(self, low_ms: int, high_ms: int) -> int:
        self.now_ms += self._rng.randint(low_ms, high_ms)
        return self.now_ms

    def _new_session(self, parent: Session | None) -> Session:
        rng = self._rng
        self.made += 1
        self._tick(*((1, 2_000) if parent else (1_000, 600_000)))  # subagents start at once
        project = parent.project if parent else rng.choices(self._projects, (3, 2, 2, 1))[0]
        directory = project.worktree if project.git else f"{self._home}/{rng.choice(REPOS)}"
        sid = self.mint_id("ses", descending=True)
        slug = f"{rng.choice(SLUG_ADJECTIVES)}-{rng.choice(SLUG_NOUNS)}"
        title = f"New session - {iso(self.now_ms)}"
        agent = rng.choice(("general", "explore") if parent else ("build",) * 4 + ("plan",))
        version, model = rng.choice(VERSIONS), rng.choice(MODELS)
        if parent is not None:  # a subagent's session inherits where and how it runs
            return Session(
                sid,
                project,
                parent.directory,
                parent.id,
                slug,
                parent.version,
                title,
                agent,
                parent.model,
                self.now_ms,
                parent.patch_style,
            )
        patch_style = rng.random() < 0.3
        return Session(
            sid,
            project,
            directory,
            None,
            slug,
            version,
            title,
            agent,
            model,
            self.now_ms,
            patch_style,
        )

    def _emit(self, s: Session, rel: str, doc: object) -> Write:
        s.paths[rel] = None
        return Write(rel, dump(doc))

    def _session_op(self, s: Session) -> Write:
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

    def _project_op(self, p: Project) -> Write:
        times = {"created": p.created, "updated": self.now_ms}
        doc: Json = {"id": p.id, "worktree": p.worktree, "sandboxes": [], "time": times}
        if p.git:
            doc["time"]["initialized"] = p.created + 4_000
            doc["vcs"] = "git"
        return Write(f"project/{p.id}.json", dump(doc))

    def _part(self, s: Session, mid: str, pid: str, body: Json) -> Write:
        doc = {"id": pid, "sessionID": s.id, "messageID": mid, **body}
        return self._emit(s, f"part/{mid}/{pid}.json", doc)

    def _session(self, s: Session) -> Iterator[Op]:
        if s.parent is None:
            yield self._project_op(s.project)  # OpenCode touches the project's time.updated
        yield self._session_op(s)
        for turn in range(1 if s.parent else self._rng.randint(3, 6)):
            yield from self._turn(s, first=turn == 0)
            self._tick(5_000, 300_000)  # the user reads the answer and thinks
        yield Settled(tuple(s.paths))

    def _turn(self, s: Session, first: bool) -> Iterator[Op]:
        rng = self._rng
        created = self._tick(500, 60_000)
        uid = self.mint_id("msg")  # ids carry their creation time, as OpenCode's do
        user: Json = {"id": uid, "sessionID": s.id, "role": "user", "time": {"created": created}}
        tail = {"agent": s.agent, "model": {"providerID": s.model[0], "modelID": s.model[1]}}
        yield self._emit(s, f"message/{s.id}/{uid}.json", user | tail)
        prompt = s.prompt if first and s.parent else prose(rng, rng.randint(1, 3)).lower()
        yield self._part(s, uid, self.mint_id("prt"), {"type": "text", "text": prompt})
        if rng.random() < 0.1:  # an attached file (@mention)
            file = rng.choice(FILES)
            url = f"file://{s.directory}/{file}"
            attached = {"type": "file", "mime": "text/plain", "filename": file, "url": url}
            yield self._part(s, uid, self.mint_id("prt"), attached)
        if first and s.parent is None:
            s.title, s.updated = task_title(rng), self.now_ms  # titled after the prompt
            yield self._session_op(s)
        steps = rng.randint(2, 7)
        for step in range(steps):
            if (yield from self._assistant(s, uid, final=step == steps - 1)):
                break  # the error ended the turn
        summary = {"title": task_title(rng), "diffs": []}
        yield self._emit(s, f"message/{s.id}/{uid}.json", user | {"summary": summary} | tail)
        if s.diffs:
            yield self._emit(s, f"session_diff/{s.id}.json", list(s.diffs.values()))
        s.summarized, s.updated = True, self.now_ms
        yield self._session_op(s)

    def _assistant(self, s: Session, parent_id: str, final: bool) -> Generator[Op, None, bool]:
        """One step: step-start, reasoning, text, tools, step-finish. Returns True on error."""
        rng = self._rng
        times = {"created": self._tick(20, 800)}
        mid = self.mint_id("msg")
        rel = f"message/{s.id}/{mid}.json"
        # Key order as in OpenCode 1.1 files: an error goes between `time` and `parentID`.
        head: Json = {"id": mid, "sessionID": s.id, "role": "assistant", "time": times}
        body: Json = {"parentID": parent_id, "modelID": s.model[1], "providerID": s.model[0]}
        body |= {"mode": s.agent, "agent": s.agent}
        body |= {"path": {"cwd": s.directory, "root": s.project.worktree}}
        body |= {"cost": 0, "tokens": tokens(None)}
        yield self._emit(s, rel, head | body)
        snapshot = f"{rng.getrandbits(160):040x}"
        yield self._part(s, mid, self.mint_id("prt"), {"type": "step-start", "snapshot": snapshot})
        if rng.random() < 0.5:
            hidden = rng.random() < 0.5  # many providers stream no reasoning text at all
            yield from self._stream(s, mid, "reasoning", "" if hidden else prose(rng, 3))
        if rng.random() < 0.03:
            times["completed"] = self._tick(1_000, 30_000)
            name, message = rng.choice(ERRORS)
            data: Json = {"message": message}
            if name == "APIError":
                data |= {"statusCode": 529, "isRetryable": True}
            yield self._emit(s, rel, head | {"error": {"name": name, "data": data}} | body)
            return True
        if final or rng.random() < 0.6:
            yield from self._stream(s, mid, "text", "\n" + prose(rng, rng.randint(1, 5)))
        edited: list[str] = []
        for _ in range(0 if final else rng.choices((1, 2, 3), (5, 3, 2))[0]):
            yield from self._tool(s, mid, self._pick_tool(s), edited)
        finish = "stop" if final else "tool-calls"
        counts = tokens(rng)
        cost = round(max(s.model[2] * (counts["input"] + 4 * counts["output"]), 0.001), 6)
        cost_value = cost if s.model[2] else 0
        after = f"{rng.getrandbits(160):040x}"
        finished = {"type": "step-finish", "reason": finish, "snapshot": after}
        yield self._part(
            s, mid, self.mint_id("prt"), finished | {"cost": cost_value, "tokens": counts}
        )
        if edited:
            patched = {"type": "patch", "hash": snapshot, "files": edited}
            yield self._part(s, mid, self.mint_id("prt"), patched)
        body |= {"cost": cost_value, "tokens": counts}
        yield self._emit(s, rel, head | body)  # tokens and cost land first...
        times["completed"] = self._tick(5, 300)
        yield self._emit(s, rel, head | body | {"finish": finish})  # ...then finish and completed
        return False

    def _stream(self, s: Session, mid: str, kind: str, text: str) -> Iterator[Op]:
        """A text or reasoning part growing by deltas, rewritten whole after each one."""
        pid, start = self.mint_id("prt"), self._tick(5, 200)
        words, shown = text.split(" "), 0
        yield self._part(s, mid, pid, {"type": kind, "text": "", "time": {"start": start}})
        while shown < len(words) and text:
            shown += self._rng.randint(3, 12)
            self._tick(30, 800)
            partial = " ".join(words[:shown])
            yield self._part(s, mid, pid, {"type": kind, "text": partial, "time": {"start": start}})
        end = {"start": start, "end": self._tick(1, 200)}
        yield self._part(s, mid, pid, {"type": kind, "text": text, "time": end})

    def _pick_tool(self, s: Session) -> str:
        name = self._rng.choices(TOOLS, TOOL_WEIGHTS)[0]
        no_budget = self.budget is not None and self.made >= self.budget
        return "read" if name == "task" and (s.parent or no_budget) else name

    def _tool(self, s: Session, mid: str, name: str, edited: list[str]) -> Iterator[Op]:
        """A tool part going pending -> running -> completed (or error), in place."""
        rng, pid = self._rng, self.mint_id("prt")
        # Allocate the child before the first yield: no other session can take the budget between.
        child = self._new_session(s) if name == "task" else None
        if s.model[0] == "anthropic":
            call = "toolu_" + "".join(rng.choices(BASE62, k=24))
        else:
            call = f"call_{rng.getrandbits(96):024x}"
        head = {"type": "tool", "callID": call, "tool": name}
        pending = {"status": "pending", "input": {}, "raw": ""}
        yield self._part(s, mid, pid, head | {"state": pending})
        start = self._tick(50, 2_000)
        inp, output, title, meta = tool_call(rng, s, name, child)
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
