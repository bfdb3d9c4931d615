"""Where OpenCode's databases are (--opencode-db, $OPENCODE_DB, `opencode*.db` beside the
storage folder) and the key prefix each is given. Never opens a database."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from indexer.config import ENV_OPENCODE_DB, process_env

ENV_DB = ENV_OPENCODE_DB


def discover_databases(
    storage_root: Path, explicit: Path | None = None, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Return OpenCode's databases: --opencode-db, else $OPENCODE_DB, else every `opencode*.db`
    beside the storage folder (`opencode.db`, `opencode-<channel>.db`), opencode.db first.

    An explicit or $OPENCODE_DB path is returned even when it does not exist yet (the source
    then says so); a relative $OPENCODE_DB is taken inside OpenCode's data folder.
    """
    env = process_env() if env is None else env
    data_dir = Path(storage_root).expanduser().parent
    if explicit:
        return [Path(explicit).expanduser()]
    if env.get(ENV_DB):
        path = Path(env[ENV_DB]).expanduser()
        return [path if path.is_absolute() else data_dir / path]
    try:
        found = [p for p in data_dir.glob("opencode*.db") if p.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda p: (p.name != "opencode.db", p.name))


def source_prefix(db_path: Path, taken: Iterable[str] = ()) -> str:
    """`sqlite:<file name>:`, made unique among `taken` by a short hash of the full path.

    Always starts with `sqlite:` (the reconciler's namespace pattern is `^[a-z]+:`) and holds no
    quote, slash or colon of its own, so it is safe inside SQL literals and paths.
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", db_path.name) or "db"
    prefix = f"sqlite:{name}:"
    if prefix in set(taken):
        digest = hashlib.blake2b(os.fsencode(db_path.absolute()), digest_size=3).hexdigest()
        prefix = f"sqlite:{name}~{digest}:"
    return prefix
