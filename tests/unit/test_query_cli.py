"""`ocindex query` on an idle database file: every format, the statement from an argument, a
file or stdin, the limit, and the exit codes; the file is never written.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from indexer.cli import main

SQL = "select id, body, written from notes order by id"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "index.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE notes (id INTEGER, body VARCHAR, written TIMESTAMP)")
    conn.execute(
        "INSERT INTO notes VALUES (1, 'first', TIMESTAMP '2026-01-02 03:04:05'), "
        "(2, NULL, NULL), (3, repeat('x', 100), TIMESTAMP '2026-01-03 00:00:00')"
    )
    conn.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_query_writes_json_and_jsonl_with_times_as_iso_8601(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "query", SQL, "--db", db, "--format", "json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert rows[0] == {"id": 1, "body": "first", "written": "2026-01-02T03:04:05"}
    assert rows[1] == {"id": 2, "body": None, "written": None}
    code, out, _ = run(capsys, "query", SQL, "--db", db, "--format", "jsonl")
    assert [json.loads(line) for line in out.splitlines()] == rows


def test_query_writes_an_aligned_table_with_cut_cells_and_a_row_count(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "query", SQL, "--db", db)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["id", "body", "written"]
    assert "NULL" in lines[3]
    assert "x" * 59 + "…" in lines[4] and "x" * 61 not in lines[4]
    assert lines[-1] == "(3 rows)"


def test_query_writes_csv_parquet_and_arrow_files_that_read_back_equal(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = duckdb.connect(str(db), read_only=True)
    try:
        table = expected.sql(SQL).to_arrow_table()
    finally:
        expected.close()
    for fmt in ("csv", "parquet", "arrow"):
        code, out, err = run(
            capsys, "query", SQL, "--db", db, "--format", fmt, "--output", tmp_path / fmt
        )
        assert (code, out, err) == (0, "", ""), fmt
    assert pq.read_table(tmp_path / "parquet").equals(table)
    assert ipc.open_file(tmp_path / "arrow").read_all().equals(table)
    csv = (tmp_path / "csv").read_text().splitlines()
    assert csv[0] == '"id","body","written"' and len(csv) == 4


def test_query_reads_the_statement_from_a_file_or_stdin(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "q.sql"
    script.write_text("select count(*) as n from notes\n")
    assert run(capsys, "query", "-f", script, "--db", db, "--format", "json")[1] == '[{"n": 3}]\n'
    monkeypatch.setattr("sys.stdin", io.StringIO("select max(id) as m from notes"))
    assert run(capsys, "query", "--db", db, "--format", "json")[1] == '[{"m": 3}]\n'


def test_query_cuts_at_the_limit_and_says_so_on_stderr(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "query", SQL, "--db", db, "--format", "jsonl", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2
    assert err == "ocindex: note: the first 2 rows only (--limit)\n"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["delete from notes"], 1, "refused: DELETE statements change the index"),
        (["select * from nowhere"], 1, "Catalog Error: Table with name nowhere does not exist"),
        (["select 1", "--limit", "0"], 2, "--limit '0' is out of range"),
        (["select 1", "--timeout", "forever"], 2, "--timeout 'forever' is not a number"),
        (["select 1", "-f", "x.sql"], 2, "either as an argument or with --file"),
    ],
)
def test_query_fails_in_one_line_with_its_exit_code(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    before = db.read_bytes()
    got, out, err = run(capsys, "query", *argv, "--db", db)
    assert got == code and out == ""
    assert err.startswith("ocindex: error: ") and message in err
    assert len(err.splitlines()) == 1
    assert db.read_bytes() == before


def test_query_on_a_missing_database_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "query", "select 1", "--db", tmp_path / "none.duckdb")
    assert code == 1 and "no database at" in err
    assert not (tmp_path / "none.duckdb").exists()
