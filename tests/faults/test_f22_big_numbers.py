"""F22: numbers no BIGINT column holds (2^63 and beyond, either sign) in any numeric field.

The file is indexed with those fields NULL, and its file_index row says which fields were out
of range (`out_of_range: ...` in error_message, status still `indexed`); its batch neighbours
land, and a file with ordinary numbers carries no note. A computed column that no BIGINT holds
(the sum of huge token counts) is stored as NULL and noted the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.faults.support import census_of, reading, row, run_cli, write_now

BIG = "message/ses_1/msg_big.json"
NEGATIVE = "message/ses_1/msg_negative.json"
PLAIN = "message/ses_1/msg_plain.json"
TEXT = "message/ses_1/msg_digits_in_text.json"


def message(mid: str, tokens: str, extra: str = "") -> bytes:
    return (
        f'{{"id": "{mid}", "sessionID": "ses_1", "role": "assistant", "tokens": {tokens}{extra}}}'
    ).encode()


def test_out_of_range_numbers_are_stored_as_null_with_a_note_naming_the_field(
    root: Path, db: Path
) -> None:
    write_now(root / BIG, message("msg_big", '{"input": 18446744073709551616, "output": 7}'))
    write_now(
        root / NEGATIVE,
        message("msg_negative", '{"input": 3, "cache": {"read": -9223372036854775809}}'),
    )
    write_now(root / PLAIN, message("msg_plain", '{"input": 9223372036854775807, "output": 1}'))
    write_now(
        root / TEXT,
        message("msg_digits_in_text", '{"input": 1}', ', "title": "12345678901234567890123"'),
    )
    done = run_cli("index", "--storage", root, "--db", db, "--indexer", "v2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["indexed"] == 4
    with reading(db) as conn:
        notes = {rel: row(conn, rel) for rel in (BIG, NEGATIVE, PLAIN, TEXT)}
        tokens = dict(
            conn.execute("SELECT id, [tokens_input, tokens_output] FROM messages").fetchall()
        )
    assert notes[BIG] is not None and notes[BIG][0] == "indexed"
    assert notes[BIG][1] == "out_of_range: stored as NULL (outside 64-bit integers): tokens.input"
    assert notes[NEGATIVE] is not None and "tokens.cache.read" in (notes[NEGATIVE][1] or "")
    # 2^63-1 fits its column, but the computed total (input + output) does not.
    assert notes[PLAIN] is not None and notes[PLAIN][0] == "indexed"
    assert notes[PLAIN][1] == (
        "out_of_range: stored as NULL (outside 64-bit integers): tokens_total (computed)"
    )
    assert notes[TEXT] is not None and notes[TEXT][1] is None  # digits in a string are text
    assert tokens["msg_big"] == [None, 7]
    assert tokens["msg_plain"] == [2**63 - 1, 1]
    assert census_of(db, root) == []
