"""Where things live by default and what the environment says: paths and tunables resolved from
arguments, then environment variables, then defaults. Never reads storage or opens a database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def data_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """$OCINDEX_DB, else $XDG_DATA_HOME/ocindex/index.duckdb."""
    env = os.environ if env is None else env
    if env.get("OCINDEX_DB"):
        return Path(env["OCINDEX_DB"]).expanduser()
    return data_home(env) / "ocindex" / "index.duckdb"


class ConfigError(ValueError):
    """An environment variable holds something we cannot use; the message names it."""


def env_number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    """Return a number from the environment, or the default when unset; reject nonsense."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return value
