"""Defensive readers of OpenCode's JSON fields, one value at a time (the rare case) or a whole
column of a batch at once. Never touches the database or the filesystem, never raises on a field.

Every field but the discriminators is optional across OpenCode versions, so every read is
defensive: a wrong type becomes NULL rather than an error. Long strings are capped, never stored
whole, except the text of text and reasoning parts (and 2.x message text), kept up to
MAX_TEXT_BYTES with the cut recorded. In the column readers the common case is inline and the
scalar reader runs only for the rare value (a float where an integer belongs, a text over its
cap); `v.__class__ is int` leaves out bool, as the scalar readers do (JSON holds no subclasses).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

MAX_STRING_CHARS = 2000
PREVIEW_CHARS = 280
MAX_TEXT_BYTES = 1024 * 1024
"""The full text of a text or reasoning part is kept up to 1 MiB of UTF-8; a longer one is cut
there (on a character boundary) and `text_truncated` says so."""
TARGET_CHARS = 500
"""A tool call's target (path, command, pattern, url) is a short label, not the whole input."""

Row = tuple[Any, ...]
Doc = Mapping[str, Any]
Source = tuple[str, Any, Doc]
"""What one row is built from: its id, its parent id (a position for todos and diffs), its
document."""
Column = list[Any]
ColumnBuilder = Callable[[Sequence[Source]], list[Column]]

BIGINT = 2**63
"""DuckDB's BIGINT holds -2**63 .. 2**63-1: a number outside it is stored as NULL."""
MAX_MS = 10**14
SAFE_TEXT = MAX_TEXT_BYTES // 4  # no UTF-8 character is longer than 4 bytes
EMPTY: Doc = {}


# --- scalar readers: the rare values; a wrong type reads as None ---------------------------


def as_obj(value: object) -> Doc:
    return value if isinstance(value, dict) else EMPTY


def as_str(value: object, cap: int = MAX_STRING_CHARS) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= cap else value[:cap]


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -BIGINT <= value < BIGINT else None
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**62:
        return int(value)
    return None


def as_float(value: object) -> float | None:
    """A finite number as a float; NaN, infinities and integers too large for a float are None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def as_ms(value: object) -> int | None:
    """Epoch milliseconds as OpenCode writes them; anything else is None."""
    ms = as_int(value)
    return ms if ms is not None and 0 <= ms < MAX_MS else None


def kept_text(value: object) -> tuple[str | None, bool | None]:
    """The text kept whole up to MAX_TEXT_BYTES, and whether it was cut."""
    if not isinstance(value, str):
        return None, None
    if len(value) <= SAFE_TEXT:
        return value, False
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_TEXT_BYTES:
        return value, False
    return data[:MAX_TEXT_BYTES].decode("utf-8", "ignore"), True


def file_list(value: object) -> str | None:
    """A list of file names as a JSON array (strings as they are, objects by their `file` or
    `path`), so SQL reads it with from_json(col, '["VARCHAR"]')."""
    if not isinstance(value, list):
        return None
    names = (
        item if isinstance(item, str) else as_obj(item).get("file") or as_obj(item).get("path")
        for item in value
    )
    return orjson.dumps([n for n in map(as_str, names) if n is not None]).decode()


# --- whole columns: the common case inline, the rare value through a scalar reader ---------


def objs_at(objs: Sequence[Doc], key: str) -> list[Doc]:
    return [v if (v := o.get(key)).__class__ is dict else EMPTY for o in objs]


def strs_at(objs: Sequence[Doc], key: str, cap: int = MAX_STRING_CHARS) -> Column:
    return [
        (v if len(v) <= cap else v[:cap]) if (v := o.get(key)).__class__ is str else None
        for o in objs
    ]


def ints_at(objs: Sequence[Doc], key: str) -> Column:
    return as_ints([o.get(key) for o in objs])


def as_ints(values: Column) -> Column:
    return [
        v
        if v.__class__ is int and -BIGINT <= v < BIGINT
        else (as_int(v) if v.__class__ is float else None)
        for v in values
    ]


def mss_at(objs: Sequence[Doc], key: str) -> Column:
    return [
        v
        if (v := o.get(key)).__class__ is int and 0 <= v < MAX_MS
        else (as_ms(v) if v.__class__ is float else None)
        for o in objs
    ]


def floats_at(objs: Sequence[Doc], key: str) -> Column:
    return [
        (v if math.isfinite(v) else None)
        if (v := o.get(key)).__class__ is float
        else (as_float(v) if v.__class__ is int else None)
        for o in objs
    ]


def lens(values: Column) -> Column:
    return [len(v) if v.__class__ is str else None for v in values]


def either(first: Column, second: Column) -> Column:
    """The first value, or the second where the first is None or empty (Python's `or`)."""
    return [a or b for a, b in zip(first, second, strict=True)]


def tokens_of(objs: Sequence[Doc]) -> list[Column]:
    """input, output, reasoning, cache read, cache write of each object's `tokens`."""
    tokens = objs_at(objs, "tokens")
    cache = objs_at(tokens, "cache")
    return [
        ints_at(tokens, "input"),
        ints_at(tokens, "output"),
        ints_at(tokens, "reasoning"),
        ints_at(cache, "read"),
        ints_at(cache, "write"),
    ]


def class_sum(counts: list[int | None]) -> int | None:
    """The classes summed (None counts as 0), or None when none is known."""
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def split(sources: Sequence[Source]) -> tuple[Column, Column, list[Doc]]:
    return [s[0] for s in sources], [s[1] for s in sources], [s[2] for s in sources]
