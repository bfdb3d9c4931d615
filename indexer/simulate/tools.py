"""What OpenCode's tools take and return in a simulated session: reads, shell commands,
searches, todo lists, subagent tasks, edits and the session diff they grow. Never writes a file."""

from __future__ import annotations

import random

from indexer.simulate.session import Session
from indexer.simulate.vocabulary import (
    COMMANDS,
    FILES,
    NOUNS,
    Json,
    code_lines,
    dump,
    patch,
    prose,
    task_title,
)

ToolCall = tuple[Json, str, str, Json]  # input, output, title, metadata


def tool_call(rng: random.Random, s: Session, name: str, child: Session | None) -> ToolCall:
    """Input, output, title and metadata for one call, shaped like OpenCode's tools."""
    inp: Json
    meta: Json
    file = rng.choice(FILES)
    path = f"{s.directory}/{file}"
    if name == "read":
        lines = _lines(rng, s, file)
        numbered = "".join(f"{n:05d}| {line}\n" for n, line in enumerate(lines, 1))
        out = f"<file>\n{numbered}\n(End of file - total {len(lines)} lines)\n</file>"
        meta = {"preview": "\n".join(lines[:20]), "truncated": len(lines) > 20}
        return {"filePath": path}, out, file, meta
    if name == "bash":
        command, desc = rng.choice(COMMANDS)
        out = "".join(f" M {f}\n" for f in rng.sample(FILES, 3))
        if "pytest" in command:
            out = f"{rng.randint(3, 90)} passed in {rng.uniform(0.2, 9):.2f}s\n"
        meta = {"output": out, "exit": 0, "description": desc, "truncated": False}
        return {"command": command, "description": desc}, out, desc, meta
    if name in ("grep", "glob"):
        hits = rng.sample(FILES, rng.randint(1, 4))
        pattern = rng.choice(NOUNS) if name == "grep" else "**/*.py"
        out = f"Found {len(hits)} matches\n" + "\n".join(f"{s.directory}/{f}" for f in hits)
        meta = {"matches" if name == "grep" else "count": len(hits), "truncated": False}
        return {"pattern": pattern, "path": s.directory}, out, pattern, meta
    if name == "todowrite":
        _advance_todos(rng, s)
        todos = [dict(t) for t in s.todos]
        left = sum(t["status"] != "completed" for t in todos)
        return {"todos": todos}, dump(todos).decode(), f"{left} todos", {"todos": todos}
    if name == "task" and child is not None:
        desc = task_title(rng)
        child.title, child.prompt = f"{desc} (@{child.agent} subagent)", prose(rng, 3)
        out = f"{prose(rng, 2)}\n\n<task_metadata>\nsession_id: {child.id}\n</task_metadata>"
        inp = {"description": desc, "prompt": child.prompt, "subagent_type": child.agent}
        return inp, out, desc, {"sessionId": child.id, "summary": []}
    existed = name == "edit" or file in s.files  # edit and write change the session's diff
    before = list(_lines(rng, s, file)) if existed else []
    after = list(before)
    at = rng.randint(0, len(after))
    after[at : at + 1] = code_lines(rng, rng.randint(1, 3))
    s.files[file] = after
    _record_diff(s, file, before, after)
    diff = patch(file, before, after)[0]
    if name == "edit":
        old, new = "\n".join(before[at : at + 1]), "\n".join(after[at : at + 1])
        inp = {"filePath": path, "oldString": old, "newString": new}
        meta = {"diagnostics": {}, "diff": diff, "truncated": False}
        return inp, "Edit applied successfully.", file, meta
    meta = {"diagnostics": {}, "filepath": path, "exists": existed, "truncated": False}
    inp = {"content": "\n".join(after), "filePath": path}
    return inp, "Wrote file successfully.", file, meta


def _lines(rng: random.Random, s: Session, file: str) -> list[str]:
    # The default is drawn even for a known file: the RNG stream depends on it.
    return s.files.setdefault(file, code_lines(rng, rng.randint(8, 40)))


def _record_diff(s: Session, file: str, before: list[str], after: list[str]) -> None:
    original = s.originals.setdefault(file, before)
    text, adds, dels = patch(file, original, after)
    status = "added" if not original else "modified"
    entry: Json = {"file": file}
    if s.patch_style:
        entry["patch"] = text
    else:
        entry |= {"before": "\n".join(original), "after": "\n".join(after)}
    s.diffs[file] = entry | {"additions": adds, "deletions": dels, "status": status}


def _advance_todos(rng: random.Random, s: Session) -> None:
    """First call plans a list; later calls finish one item and start the next."""
    if not s.todos:
        for n in range(1, rng.randint(3, 6) + 1):
            priority = rng.choice(("high", "medium", "low"))
            todo = {"content": task_title(rng), "status": "pending", "priority": priority}
            s.todos.append(todo | {"id": str(n)})
    for todo in s.todos:
        if todo["status"] == "in_progress":
            todo["status"] = "completed"
        elif todo["status"] == "pending":
            todo["status"] = "in_progress"
            break
