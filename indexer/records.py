"""Turns the bytes of one OpenCode file into the sources of its kind's rows, or a classified
failure. Never touches the database or the filesystem; which rows a kind makes is `indexer.kinds`'s.
"""

from __future__ import annotations

import hashlib

import orjson

from indexer.fields import Source
from indexer.kinds import SPECS, FileKey, FileKind, Table
from indexer.outcome import Failure, FailureReason, ParsedFile

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024


def content_hash(data: bytes) -> str:
    """Return the hex digest we store in file_index to prove which bytes were indexed."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def parse(
    key: FileKey, data: bytes, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> ParsedFile | Failure:
    """Return the rows of one file's bytes, or why they cannot be indexed."""
    result = parse_fields(key.kind, key.record_id, key.parent_id, data, max_file_bytes)
    return result if isinstance(result, Failure) else ParsedFile(*result)


ParsedFields = tuple[Table, str, tuple[Source, ...]]
"""A ParsedFile's fields (its table, owner id and sources), with no object made."""


def parse_fields(
    kind: FileKind,
    record_id: str,
    parent_id: str,
    data: bytes,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ParsedFields | Failure:
    """`parse` of a key given by its fields."""
    if len(data) > max_file_bytes:
        return too_large(len(data), max_file_bytes)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not data.strip():  # here, not before: a copy of every file's bytes costs
            why = "the file is empty" if not data else "only whitespace"
            return Failure(FailureReason.EMPTY, why)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return Failure(
                FailureReason.INVALID_UTF8, f"not UTF-8 at byte {uexc.start}: {uexc.reason}"
            )
        return Failure(
            FailureReason.INVALID_JSON,
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (byte {exc.pos} of {len(data)})",
        )
    spec = SPECS[kind]
    if spec.build_array is not None:
        if not isinstance(doc, list):
            return Failure(
                FailureReason.NOT_ARRAY,
                f"a {kind} file must hold an array, found {_jtype(doc)}",
            )
        items = [item for item in doc if isinstance(item, dict)]
        return spec.table, record_id, spec.build_array(record_id, parent_id, items)
    if not isinstance(doc, dict):
        return Failure(
            FailureReason.NOT_OBJECT, f"a {kind} file must hold an object, found {_jtype(doc)}"
        )
    found_id = doc.get("id")
    if not isinstance(found_id, str) or not found_id:
        return Failure(FailureReason.MISSING_ID, f"the {kind} object has no 'id' field")
    # Its row is built with the rest of its batch's, by the table's column builder.
    return spec.table, record_id, ((record_id, parent_id, doc),)


def too_large(size: int, max_file_bytes: int) -> Failure:
    return Failure(
        FailureReason.TOO_LARGE, f"{size} bytes is over the limit of {max_file_bytes} bytes"
    )


def _jtype(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
