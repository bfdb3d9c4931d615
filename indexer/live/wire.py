"""The JSON form of the frozen values that cross the live endpoint (snapshots, comparisons, action
results, health): dataclasses.asdict out, a rebuild typed by the dataclass's own fields in. Never
unpickles and never builds a type it was not asked for.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class WireError(ValueError):
    """A JSON value that does not fit the type asked for; the message names the field."""


def plain(value: object) -> object:
    """A dataclass value as the JSON-ready dicts and lists of dataclasses.asdict; else itself."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


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
    """`data` (decoded JSON) as a `kind`: a frozen dataclass, checked field by field."""
    value: T = _rebuild(kind, data, kind.__name__)
    return value


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _rebuild(kind: Any, data: object, where: str) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _dataclass(kind, data, where)
    if origin is typing.Union or origin is types.UnionType:
        if data is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _rebuild(arg, data, where)
            except WireError:
                continue
        raise WireError(f"{where}: {data!r} fits none of {kind}")
    if origin is tuple:
        items = _sequence(data, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_rebuild(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
        if len(items) != len(args):
            raise WireError(f"{where}: {len(items)} items where {len(args)} belong")
        return tuple(
            _rebuild(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, items, strict=True))
        )
    if origin is list:
        items = _sequence(data, where)
        return [_rebuild(args[0], v, f"{where}[{i}]") for i, v in enumerate(items)]
    if origin is dict:
        if not isinstance(data, dict) or args[0] is not str:
            raise WireError(f"{where}: expected an object, got {type(data).__name__}")
        return {str(k): _rebuild(args[1], v, f"{where}.{k}") for k, v in data.items()}
    return _scalar(kind, data, where)


def _dataclass(kind: type, data: object, where: str) -> Any:
    if not isinstance(data, dict):
        raise WireError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _hints(kind)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(kind):
        if not field.init:
            continue
        if field.name not in data:
            no_default = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise WireError(f"{where}.{field.name}: missing")
            continue
        values[field.name] = _rebuild(hints[field.name], data[field.name], f"{where}.{field.name}")
    # Keys this version does not know (a newer process) are left out, not refused.
    return kind(**values)


def _sequence(data: object, where: str) -> list[object] | tuple[object, ...]:
    """An array: a list from JSON, or the tuple dataclasses.asdict keeps."""
    if not isinstance(data, list | tuple):
        raise WireError(f"{where}: expected an array, got {type(data).__name__}")
    return data


def _scalar(kind: Any, data: object, where: str) -> Any:
    if kind is type(None):
        if data is None:
            return None
    elif kind is bool:
        if isinstance(data, bool):
            return data
    elif kind is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif kind is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
    elif kind is str:
        if isinstance(data, str):
            return data
    else:
        raise WireError(f"{where}: {kind} does not cross the live endpoint")
    name = getattr(kind, "__name__", str(kind))
    raise WireError(f"{where}: expected {name}, got {data!r}")
