"""The configuration: one frozen tree built once from the command line and the environment, and
validated once. The only module that reads the process environment; never opens a database.

Precedence is always: the flag, then the environment variable, then the default
(docs/configuration.md). Every error is a one-line ConfigError naming the variable and what
it accepts (RANGES holds every numeric setting's bounds).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from indexer.storage import opencode_storage_in

ENV_STORAGE = "OCINDEX_STORAGE"
ENV_DB = "OCINDEX_DB"
ENV_OPENCODE_DB = "OPENCODE_DB"
ENV_ENABLED = "UNIFIED_INDEXER_V2_ENABLED"
ENV_ROLLOUT = "UNIFIED_INDEXER_V2_ROLLOUT"
ENV_WINDOW_MS = "OCINDEX_WINDOW_MS"
ENV_IDLE_SEAL_MS = "OCINDEX_IDLE_SEAL_MS"
ENV_MAX_BATCH_FILES = "OCINDEX_MAX_BATCH_FILES"
ENV_BACKLOG = "OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG"
ENV_MAX_FILE_BYTES = "OCINDEX_MAX_FILE_BYTES"
ENV_SETTLE_S = "OCINDEX_SETTLE_S"
ENV_RECONCILE_S = "OCINDEX_RECONCILE_INTERVAL_S"
ENV_ALERT_ERROR_RATE = "OCINDEX_ALERT_ERROR_RATE"
ENV_ALERT_P95_MS = "OCINDEX_ALERT_P95_MS"
ENV_ALERT_MIN_FILES = "OCINDEX_ALERT_MIN_FILES"
ENV_LOCK_WAIT_S = "OCINDEX_LOCK_WAIT_S"
ENV_READ_WORKERS = "OCINDEX_READ_WORKERS"
ENV_READ_FILES_ON_WORKERS = "OCINDEX_READ_FILES_ON_WORKERS"
ENV_WATCHER_PROCESS = "OCINDEX_WATCHER_PROCESS"
ENV_FIRST_LOAD = "OCINDEX_FIRST_LOAD"
ENV_WALK_THREADS = "OCINDEX_WALK_THREADS"
ENV_WALK_PROCESSES = "OCINDEX_WALK_PROCESSES"
"""OCINDEX_WALK_THREADS's older name (the walk was shared with processes then)."""

VERSIONS = ("v1", "v2")
DEFAULT_ROLLOUT = 100
"""The v2 rollout of an install that neither a variable nor a persisted rollout sets: the plan's
rollout ended at 100%, so a fresh install runs v2 (docs/configuration.md, "Which indexer runs")."""
MAX_FILE_BYTES = 16 * 1024 * 1024
"""Files larger than this are `too_large` unless OCINDEX_MAX_FILE_BYTES says otherwise."""
LOCK_WAIT_S = 5.0
"""Opening a database another process holds is retried this long unless OCINDEX_LOCK_WAIT_S
says otherwise."""
IDLE_SEAL_MS = 20.0
"""With nothing being read or committed, a change waits this long, not the whole window, before
its batch is sealed, unless OCINDEX_IDLE_SEAL_MS says otherwise. Measured with the paced replay
runs (docs/benchmarks.md, "Issue 14: the watcher in its own process, group commit")."""
MAX_BATCH_FILES_UNDER_BACKLOG = 5000
"""While a sealed batch is still being read or committed, the next takes everything pending up to
this many files; once the pipeline is idle it is back to OCINDEX_MAX_BATCH_FILES. On unless
OCINDEX_MAX_BATCH_FILES_UNDER_BACKLOG says otherwise (0: off). Measured with the replay capacity
run, alternated (2026-12-03): 1000 gave 11,346-14,034 file versions/s (means 12,132 and
12,407), 2500 12,106-14,161, 5000 11,680-14,722 (means 13,985 and 13,305); the paced runs'
batches stay far below it (docs/benchmarks.md, "one worker started, the others forked")."""


def process_env() -> Mapping[str, str]:
    """The process environment; every default here that reads the environment reads this."""
    return os.environ


def default_env(name: str, value: str) -> str:
    """The process environment's `name`, set to `value` first when unset or empty: for the
    libraries this process loads from now on, and every process it starts. Returns its value."""
    if not os.environ.get(name):
        os.environ[name] = value
    return os.environ[name]


def cores() -> int:
    """The cores this process may run on: the default count of worker and helper processes."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def child_env() -> dict[str, str]:
    """The environment of a `python -m indexer...` child process: this one's, with this very
    package first on PYTHONPATH, wherever it was imported from."""
    env = dict(process_env())
    home = os.fspath(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return env


class ConfigError(ValueError):
    """A setting holds something we cannot use; the one-line message names it."""


# --- paths -------------------------------------------------------------------------------------


def data_home(env: Mapping[str, str] | None = None) -> Path:
    env = process_env() if env is None else env
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """$OCINDEX_DB, else $XDG_DATA_HOME/ocindex/index.duckdb."""
    env = process_env() if env is None else env
    if env.get(ENV_DB):
        return Path(env[ENV_DB]).expanduser()
    return data_home(env) / "ocindex" / "index.duckdb"


def resolve_storage_root(
    explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> tuple[Path, str]:
    """The storage root and where it came from, the first found of: --storage, $OCINDEX_STORAGE,
    $XDG_DATA_HOME/opencode/storage, ~/.local/share/opencode/storage. The first two are taken even
    when they do not exist yet (asked for by name), as their storage folder if they are OpenCode's
    data folder (storage.opencode_storage_in)."""
    env = process_env() if env is None else env
    if explicit:
        return opencode_storage_in(Path(explicit).expanduser()), "--storage"
    if env.get(ENV_STORAGE):
        return opencode_storage_in(Path(env[ENV_STORAGE]).expanduser()), "$OCINDEX_STORAGE"
    candidates: list[tuple[Path, str]] = []
    if env.get("XDG_DATA_HOME"):
        candidates.append((Path(env["XDG_DATA_HOME"]) / "opencode" / "storage", "$XDG_DATA_HOME"))
    candidates.append((Path.home() / ".local" / "share" / "opencode" / "storage", "home"))
    for path, source in candidates:
        if path.is_dir():
            return path, source
    return candidates[0]


def temp_dir(env: Mapping[str, str] | None = None) -> Path:
    """$TMPDIR, else /tmp."""
    env = process_env() if env is None else env
    return Path(env.get("TMPDIR", "/tmp"))


# --- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    """The values a numeric setting accepts: finite, from low to high inclusive, whole or not."""

    low: float
    high: float
    whole: bool = False

    def __str__(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {_shown(self.low)} to {_shown(self.high)}"


def _shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


RANGES: Mapping[str, Range] = {
    ENV_WINDOW_MS: Range(0, 600_000),
    ENV_IDLE_SEAL_MS: Range(0, 600_000),
    ENV_MAX_BATCH_FILES: Range(1, 1_000_000, whole=True),
    ENV_BACKLOG: Range(0, 1_000_000, whole=True),
    ENV_MAX_FILE_BYTES: Range(1, 1 << 30, whole=True),
    ENV_SETTLE_S: Range(0, 3_600),
    ENV_RECONCILE_S: Range(0.1, 86_400),
    ENV_ALERT_ERROR_RATE: Range(0, 1),
    ENV_ALERT_P95_MS: Range(0, 3_600_000),
    ENV_ALERT_MIN_FILES: Range(0, 1_000_000, whole=True),
    ENV_LOCK_WAIT_S: Range(0, 300),
    ENV_READ_WORKERS: Range(0, 64, whole=True),
    ENV_READ_FILES_ON_WORKERS: Range(0, 1, whole=True),
    ENV_WATCHER_PROCESS: Range(0, 1, whole=True),
    ENV_FIRST_LOAD: Range(0, 1, whole=True),
    ENV_WALK_THREADS: Range(1, 64, whole=True),
    ENV_WALK_PROCESSES: Range(1, 64, whole=True),
    "--window": Range(1, 31_536_000),
    "--metrics-port": Range(1, 65_535, whole=True),
    "--settle-timeout": Range(0, 86_400),
    "--rate": Range(0, 100_000),
    "--duration": Range(0, 86_400),
    "--sessions": Range(0, 100_000, whole=True),
    "--seed": Range(0, 4_294_967_295, whole=True),
    "--files": Range(1, 10_000_000, whole=True),
    "--limit": Range(1, 100_000_000, whole=True),
    "--timeout": Range(0.01, 86_400),
}
"""Every numeric setting, variable or flag, and what it accepts (docs/configuration.md)."""


def parse_number(name: str, raw: str) -> float:
    """`raw` as the value of the setting `name`, checked against RANGES[name]; anything else is
    a one-line ConfigError naming the setting and what it accepts."""
    accepted = RANGES[name]
    what = f"{name} {raw!r}" if name.startswith("-") else f"{name}={raw!r}"
    try:
        value = float(raw.strip())
    except ValueError:
        problem = "is not a number"
    else:
        if not math.isfinite(value):
            problem = "is not a finite number"
        elif accepted.whole and not value.is_integer():
            problem = "is not a whole number"
        elif not accepted.low <= value <= accepted.high:
            problem = "is out of range"
        else:
            return value
    raise ConfigError(f"{what} {problem}; accepted: {accepted}")


def parse_setting(name: str, raw: str) -> float | int:
    """parse_number, as an int for the settings that take whole numbers."""
    value = parse_number(name, raw)
    return int(value) if RANGES[name].whole else value


def env_number(env: Mapping[str, str], name: str, default: float) -> float:
    """The variable's number, or the default when unset or empty; see parse_number."""
    raw = env.get(name, "")
    return parse_number(name, raw) if raw.strip() else default


def env_whole(env: Mapping[str, str], name: str, default: int) -> int:
    """The variable's whole number, or the default when unset or empty; see parse_number."""
    return int(env_number(env, name, default))


def lock_wait_s(env: Mapping[str, str] | None = None) -> float:
    """$OCINDEX_LOCK_WAIT_S: how long opening a database held by another process is retried."""
    return env_number(process_env() if env is None else env, ENV_LOCK_WAIT_S, LOCK_WAIT_S)


def parse_flag(value: str) -> bool | None:
    """UNIFIED_INDEXER_V2_ENABLED's value: true, false, or None when empty."""
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    if text == "":
        return None
    raise ConfigError(
        f"{ENV_ENABLED}={value!r} is not true or false; accepted: 1/0, true/false, yes/no, on/off"
    )


def parse_rollout(value: str | float | int, name: str | None = None) -> int:
    """Return a rollout as a whole percent; accepts 0-100 or, written with a point, 0.0-1.0.

    `name` is the variable the value came from, for the error message.
    """
    text = str(value).strip()
    what = f"{name}={text!r}" if name else f"rollout {text!r}"
    accepted = "accepted: a percent from 0 to 100, or a share from 0.0 to 1.0 (with a point)"
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{what} is not a number; {accepted}") from None
    if "." in text and 0.0 <= number <= 1.0:
        number *= 100
    if not 0 <= number <= 100:  # also refuses nan and the infinities
        raise ConfigError(f"{what} is out of range; {accepted}")
    return round(number)


# --- the tree ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flags:
    """What the command line said; None where a flag was not given."""

    storage: Path | None = None
    db: Path | None = None
    indexer: str | None = None
    opencode_db: Path | None = None


@dataclass(frozen=True, slots=True)
class Paths:
    storage_root: Path
    storage_source: str
    """Where the root came from: --storage, $OCINDEX_STORAGE, $XDG_DATA_HOME or home."""
    db_path: Path
    opencode_db: Path | None = None
    """--opencode-db: OpenCode's SQLite store, named on the command line."""
    opencode_db_env: str = ""
    """$OPENCODE_DB as written (relative: inside OpenCode's data folder)."""

    @classmethod
    def from_env(cls, flags: Flags, env: Mapping[str, str]) -> Paths:
        root, source = resolve_storage_root(flags.storage, env)
        return cls(
            storage_root=root,
            storage_source=source,
            db_path=Path(flags.db) if flags.db else default_db_path(env),
            opencode_db=flags.opencode_db,
            opencode_db_env=env.get(ENV_OPENCODE_DB, ""),
        )

    @property
    def opencode_env(self) -> Mapping[str, str]:
        """$OPENCODE_DB as a mapping, for SQLite store discovery."""
        return {ENV_OPENCODE_DB: self.opencode_db_env} if self.opencode_db_env else {}


@dataclass(frozen=True, slots=True)
class Rollout:
    """UNIFIED_INDEXER_V2_ENABLED and UNIFIED_INDEXER_V2_ROLLOUT, parsed; None when unset."""

    enabled: bool | None = None
    enabled_text: str = ""
    percent: int | None = None
    percent_text: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Rollout:
        enabled_text = env.get(ENV_ENABLED, "")
        percent_text = env.get(ENV_ROLLOUT, "").strip()
        return cls(
            enabled=parse_flag(enabled_text),
            enabled_text=enabled_text,
            percent=parse_rollout(percent_text, ENV_ROLLOUT) if percent_text else None,
            percent_text=percent_text,
        )


@dataclass(frozen=True)
class Tunables:
    """The v2 pipeline's settings (docs/configuration.md, "v2 pipeline tunables")."""

    window_ms: float = 200.0
    idle_seal_ms: float = IDLE_SEAL_MS
    max_batch_files: int = 100
    max_batch_files_under_backlog: int | None = None
    """None when unset (MAX_BATCH_FILES_UNDER_BACKLOG applies); 0 when set to turn it off."""
    max_file_bytes: int = MAX_FILE_BYTES
    settle_s: float = 2.0
    reconcile_interval_s: float = 30.0
    read_workers: int | None = None
    """Processes that read big batches; None when unset (one per core in a catch-up, else 0)."""
    read_files_on_workers: int = 0
    """1: those processes read JSON files too, not only a store's records."""
    watcher_process: int = 1
    """1: the watcher runs in a process of its own; 0: in the indexer's."""
    walk_threads: int | None = None
    """Threads that share a big tree's walk; None when unset (one per core)."""
    first_load: int = 1
    """1: a first catch-up of a tree with no store beside it is loaded in bulk; 0: through the
    accumulator, as every later change."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tunables:
        return cls(
            window_ms=env_number(env, ENV_WINDOW_MS, cls.window_ms),
            idle_seal_ms=env_number(env, ENV_IDLE_SEAL_MS, cls.idle_seal_ms),
            max_batch_files=env_whole(env, ENV_MAX_BATCH_FILES, cls.max_batch_files),
            max_batch_files_under_backlog=(
                env_whole(env, ENV_BACKLOG, 0) if ENV_BACKLOG in env else None
            ),
            max_file_bytes=env_whole(env, ENV_MAX_FILE_BYTES, cls.max_file_bytes),
            settle_s=env_number(env, ENV_SETTLE_S, cls.settle_s),
            reconcile_interval_s=env_number(env, ENV_RECONCILE_S, cls.reconcile_interval_s),
            read_workers=env_whole(env, ENV_READ_WORKERS, 0) if ENV_READ_WORKERS in env else None,
            read_files_on_workers=env_whole(
                env, ENV_READ_FILES_ON_WORKERS, cls.read_files_on_workers
            ),
            watcher_process=env_whole(env, ENV_WATCHER_PROCESS, cls.watcher_process),
            first_load=env_whole(env, ENV_FIRST_LOAD, cls.first_load),
            walk_threads=next(
                (
                    env_whole(env, name, 1)
                    for name in (ENV_WALK_THREADS, ENV_WALK_PROCESSES)
                    if name in env
                ),
                None,
            ),
        )

    @property
    def backlog_batch_files(self) -> int:
        """The adaptive cap in force: the variable's (0: off), else the default."""
        value = self.max_batch_files_under_backlog
        return MAX_BATCH_FILES_UNDER_BACKLOG if value is None else value

    def for_bulk(self, files: int, workers: int) -> Tunables:
        """A one-shot catch-up grows batches to `files` under backlog and reads them on `workers`
        processes, unless the variables say otherwise."""
        bulk = self
        if self.max_batch_files_under_backlog is None:
            bulk = replace(bulk, max_batch_files_under_backlog=files)
        if self.read_workers is None:
            bulk = replace(bulk, read_workers=workers)
        return bulk


@dataclass(frozen=True)
class Alerts:
    """The dashboard's anomaly thresholds (docs/configuration.md, "Anomaly alert")."""

    error_rate: float = 0.2
    p95_ms: float = 500.0
    min_files: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Alerts:
        return cls(
            error_rate=env_number(env, ENV_ALERT_ERROR_RATE, cls.error_rate),
            p95_ms=env_number(env, ENV_ALERT_P95_MS, cls.p95_ms),
            min_files=env_whole(env, ENV_ALERT_MIN_FILES, cls.min_files),
        )


@dataclass(frozen=True, slots=True)
class IndexerConfig:
    """Everything an engine is built from."""

    paths: Paths
    indexer: str | None = None
    """--indexer: forces a version over the flag and the rollout."""
    rollout: Rollout = field(default_factory=Rollout)
    tunables: Tunables = field(default_factory=Tunables)
    alerts: Alerts = field(default_factory=Alerts)
    lock_wait_s: float = LOCK_WAIT_S
    """OCINDEX_LOCK_WAIT_S, checked here so a bad value stops a command before it opens anything
    (open_database reads the same variable through lock_wait_s)."""

    @classmethod
    def load(
        cls, flags: Flags | None = None, env: Mapping[str, str] | None = None
    ) -> IndexerConfig:
        """Build and validate the whole tree; env defaults to the process environment."""
        flags = Flags() if flags is None else flags
        env = process_env() if env is None else env
        if flags.indexer and flags.indexer not in VERSIONS:
            raise ConfigError(f"unknown indexer {flags.indexer!r}; choose v1 or v2")
        return cls(
            paths=Paths.from_env(flags, env),
            indexer=flags.indexer or None,
            rollout=Rollout.from_env(env),
            tunables=Tunables.from_env(env),
            alerts=Alerts.from_env(env),
            lock_wait_s=lock_wait_s(env),
        )
