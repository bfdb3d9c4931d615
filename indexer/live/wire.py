"""The JSON form of the frozen values that cross the live endpoint (snapshots, comparisons, action
results, health): the dicts of dataclasses.asdict out, a rebuild typed by the dataclass's own
fields in. Never unpickles and never builds a type it was not asked for.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Decoder = Callable[[object], Any]


class WireError(ValueError):
    """A JSON value that does not fit the type asked for; the message names the field."""


class _Mismatch(Exception):
    """Raised inside a decoder; the path is filled in on the way out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def plain(value: object) -> object:
    """A value as dataclasses.asdict gives it (dicts for dataclasses, JSON-ready), without its
    deep copies: the values are frozen and about to be written out."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    names = _field_names(typing.cast(Any, type(value)))
    if names is not None:
        return {name: plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@functools.cache
def _field_names(kind: type) -> tuple[str, ...] | None:
    if not dataclasses.is_dataclass(kind):
        return None
    return tuple(f.name for f in dataclasses.fields(kind))


def dumps(value: object) -> str:
    """The JSON text of a dataclass value (or of plain JSON values holding none)."""
    return json.dumps(plain(value))


def loads(kind: type[T], text: str | bytes) -> T:
    """The `kind` value that dumps() wrote."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WireError(f"not JSON: {exc}") from None
    return rebuild(kind, data)


def rebuild(kind: type[T], data: object) -> T:
    """`data` (decoded JSON, or what plain() gave) as a `kind`, checked field by field."""
    try:
        value: T = _decoder(typing.cast(Any, kind))(data)
    except _Mismatch as exc:
        raise WireError(f"{kind.__name__}{''.join(exc.path)}: {exc.message}") from None
    return value


@functools.cache
def _decoder(kind: Any) -> Decoder:
    """The function that rebuilds one `kind` from JSON, built once per type."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _dataclass(kind)
    if origin is typing.Union or origin is types.UnionType:
        return _union(kind, args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _array(_decoder(args[0]), tuple)
    if origin is list:
        return _array(_decoder(args[0]), list)
    if origin is dict and args[0] is str:
        return _object(_decoder(args[1]))
    if kind in _SCALARS:
        return _SCALARS[kind]
    raise TypeError(f"{kind} does not cross the live endpoint")


def _dataclass(kind: type) -> Decoder:
    hints = typing.get_type_hints(kind)
    fields = [
        (
            f.name,
            _decoder(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(kind)
        if f.init
    ]

    def decode(data: object) -> object:
        if not isinstance(data, dict):
            raise _Mismatch(f"expected an object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for name, field_decoder, required in fields:
            if name in data:
                try:
                    values[name] = field_decoder(data[name])
                except _Mismatch as exc:
                    exc.path.insert(0, f".{name}")
                    raise
            elif required:
                mismatch = _Mismatch("missing")
                mismatch.path.append(f".{name}")
                raise mismatch
        # Keys this version does not know (a newer process) are left out, not refused.
        return kind(**values)

    return decode


def _union(kind: Any, args: tuple[Any, ...]) -> Decoder:
    optional = type(None) in args
    choices = [_decoder(a) for a in args if a is not type(None)]

    def decode(data: object) -> object:
        if data is None and optional:
            return None
        for choice in choices:
            try:
                return choice(data)
            except _Mismatch:
                continue
        raise _Mismatch(f"{data!r} fits none of {kind}")

    return decode


def _array(item: Decoder, make: Callable[[list[Any]], object]) -> Decoder:
    def decode(data: object) -> object:
        # A list from JSON, or the tuple dataclasses.asdict keeps.
        if not isinstance(data, list | tuple):
            raise _Mismatch(f"expected an array, got {type(data).__name__}")
        out = []
        for i, value in enumerate(data):
            try:
                out.append(item(value))
            except _Mismatch as exc:
                exc.path.insert(0, f"[{i}]")
                raise
        return make(out)

    return decode


def _object(item: Decoder) -> Decoder:
    def decode(data: object) -> object:
        if not isinstance(data, dict):
            raise _Mismatch(f"expected an object, got {type(data).__name__}")
        out = {}
        for key, value in data.items():
            try:
                out[str(key)] = item(value)
            except _Mismatch as exc:
                exc.path.insert(0, f".{key}")
                raise
        return out

    return decode


def _scalar(kind: type, accepts: Callable[[object], bool], make: Decoder) -> Decoder:
    def decode(data: object) -> object:
        if accepts(data):
            return make(data)
        raise _Mismatch(f"expected {kind.__name__}, got {data!r}")

    return decode


def _same(value: object) -> object:
    return value


def _to_float(value: object) -> object:
    return float(typing.cast(float, value))


_SCALARS: dict[Any, Decoder] = {
    type(None): _scalar(type(None), lambda d: d is None, _same),
    bool: _scalar(bool, lambda d: type(d) is bool, _same),
    int: _scalar(int, lambda d: type(d) is int, _same),
    float: _scalar(float, lambda d: type(d) is float or type(d) is int, _to_float),
    str: _scalar(str, lambda d: type(d) is str, _same),
}
