"""The state of one simulated project and session while the story plays it: files, diffs,
todos and the paths written so far. Plain values owned by one story; never shared by threads."""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.simulate.vocabulary import Json


@dataclass
class Project:
    id: str
    worktree: str
    created: int
    git: bool


@dataclass
class Session:
    id: str
    project: Project
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
