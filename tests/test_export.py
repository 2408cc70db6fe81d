"""Export files (export.py): written from the rows in memory after a first load, byte for byte
as PostgreSQL's COPY ... TO CSV writes them from the table, and from the table otherwise."""

from __future__ import annotations

import datetime
import io
import json
import random
import struct

import polars as pl
import psycopg
from psycopg import sql

from chute.db.copy import copy_arrow
from chute.load.export import ExportRows, postgres_csv, postgres_csv_unsupported, write_export
from conftest import write

TABLE = "historical_stocks_data"
KEY = ["company_name", "stock_date"]


def server_csv(conn: psycopg.Connection, query: str) -> bytes:
    out = io.BytesIO()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)") as copy:
        for block in copy:
            out.write(block)
    return out.getvalue()


def awkward_rows(n: int = 30_000) -> pl.DataFrame:
    """Values whose text is easy to get wrong: doubles of every size (whole numbers, 1e-05 and
    0.0001, 1e+15 and 999999999999999.9, -0, NaN, infinities), text to quote, NULLs."""
    rnd = random.Random(5)
    doubles = [12.0, 0.1 + 0.2, 1e-5, 1e-4, 0.001, 123456789012345.0, 1e15, 999999999999999.9, 9e15, -0.0, 0.0,
               5e-324, 2.5e-7, 1e-300, float("nan"), float("inf"), float("-inf"), 100.0, -3.25, None]
    while len(doubles) < n:
        v = struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0]  # any bit pattern: every exponent
        for candidate in (v, rnd.uniform(-1e3, 1e3) * 10.0 ** rnd.randint(-12, 15), round(rnd.uniform(0, 500), 2)):
            if not abs(candidate) < 2.0 ** 53:  # see postgres_csv_unsupported
                candidate = rnd.uniform(-1, 1)
            doubles.append(candidate)
    doubles = doubles[:n]
    texts = ["", "a", "a,b", 'say "hi"', "line\nbreak", "cr\rx", " spaced ", "\\.", "ünï", None, "x'y", "tab\tx"]
    dates = [datetime.date(2020, 1, 2), datetime.date(1, 1, 1), datetime.date(9999, 12, 31), datetime.date(5, 3, 4),
             None]
    return pl.DataFrame({
        "id": range(n),
        "f": pl.Series(doubles, dtype=pl.Float64),
        "b": [rnd.choice([True, False, None]) for _ in range(n)],
        "d": [rnd.choice(dates) for _ in range(n)],
        "s": [rnd.choice(texts) for _ in range(n)],
        "i": [rnd.choice([0, -1, 2 ** 62, None, 17]) for _ in range(n)],
        "i32": pl.Series([rnd.choice([0, -5, 2 ** 31 - 1, None]) for _ in range(n)], dtype=pl.Int32),
    })


def test_rows_are_written_as_postgresql_writes_them(db_url):
    rows = awkward_rows()
    assert postgres_csv_unsupported(rows) == []
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TEMPORARY TABLE t (id bigint, f float8, b boolean, d date, s text, i bigint, i32 integer)")
        copy_arrow(conn.cursor(), sql.Identifier("t"), rows.to_arrow())
        theirs = server_csv(conn, "SELECT * FROM t ORDER BY id")
    ours = b"".join(postgres_csv(rows))
    assert ours.count(b"\n") > rows.height  # quoted line breaks inside values
    assert ours == theirs


def test_slices_with_and_without_text_to_quote_are_written_as_postgresql_writes_them(db_url, monkeypatch):
    """Slices whose text needs no quotes are written without quoting; one empty string, comma,
    quote or line break anywhere in a slice must still be quoted."""
    import chute.load.export

    monkeypatch.setattr(chute.load.export, "SLICE_ROWS", 10)
    plain = ["aapl", "msft", "x y", "brk.b"]
    awkward = ["", "a,b", 'say "hi"', "line\nbreak", "cr\rx"]
    texts = [plain[i % 4] for i in range(100)]
    for slice_, value in zip((1, 3, 5, 7, 9), awkward):
        texts[slice_ * 10 + 4] = value  # one in every other slice
    rows = pl.DataFrame({"id": range(100), "f": [i / 4 for i in range(100)], "s": texts})
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TEMPORARY TABLE t (id bigint, f float8, s text)")
        copy_arrow(conn.cursor(), sql.Identifier("t"), rows.to_arrow())
        assert b"".join(postgres_csv(rows)) == server_csv(conn, "SELECT * FROM t ORDER BY id")


def test_what_postgresql_writes_otherwise_is_left_to_the_server():
    assert postgres_csv_unsupported(pl.DataFrame({"f": [1.0, 2.0 ** 53]})) == ["f"]  # Ryu may print a digit more
    days_to_year_10000 = (datetime.date(9999, 12, 31) - datetime.date(1970, 1, 1)).days + 1
    past_9999 = pl.Series("d", [days_to_year_10000], dtype=pl.Int32).cast(pl.Date)
    assert postgres_csv_unsupported(past_9999.to_frame()) == ["d"]
    assert postgres_csv_unsupported(pl.DataFrame({"r": [1.5]}, schema={"r": pl.Float32})) == ["r"]
    assert postgres_csv_unsupported(pl.DataFrame({"s": ["x", "\\."]})) == ["s"]  # quoted in a one-column table
    assert postgres_csv_unsupported(pl.DataFrame({"s": ["x", "\\."], "i": [1, 2]})) == []


def test_a_first_load_writes_the_export_from_memory_as_the_table_would(stocks, cli, db_url, query):
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert "export from memory" in summary["timings"] and "export" not in summary["timings"]
    path = stocks / "processed" / "historical_stock_data.csv"
    from_memory = path.read_bytes()
    with psycopg.connect(db_url) as conn:
        assert from_memory == server_csv(conn, f"SELECT * FROM {TABLE} ORDER BY company_name, stock_date")
        assert write_export(conn, "stocks", "public", TABLE, KEY, path, None) == "table"
    assert path.read_bytes() == from_memory

    # A later run adds to rows it did not write: the file comes from the table, and has them all.
    loaded = stocks / "landing" / query("SELECT min(name) FROM chute.files WHERE status = 'loaded'")[0][0]
    write(loaded, loaded.read_text() + "2099-01-04,1,2,0.5,1.5,100,0\n")
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert summary["files_loaded"] == 1
    assert "export" in summary["timings"] and "export from memory" not in summary["timings"]
    with psycopg.connect(db_url) as conn:
        assert path.read_bytes() == server_csv(conn, f"SELECT * FROM {TABLE} ORDER BY company_name, stock_date")
    assert b"2099-01-04" in path.read_bytes()


def kept_table(conn: psycopg.Connection, rows: pl.DataFrame, path) -> ExportRows:
    """Table t holding `rows`, written (and committed) as a load unit would, with a ExportRows that saw it."""
    conn.execute("CREATE TABLE t (k bigint PRIMARY KEY, v float8)")
    copy_arrow(conn.cursor(), sql.Identifier("t"), rows.to_arrow())
    xid = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]
    conn.commit()
    kept = ExportRows({"t": (["k"], path)})
    kept.rows("t", rows)
    kept.committed(xid)
    return kept


def load_unit(conn: psycopg.Connection, kept: ExportRows, rows: pl.DataFrame) -> None:
    """One load unit writing `rows` to t and committing, with `kept` told as the runner tells it."""
    kept.rows("t", rows)
    copy_arrow(conn.cursor(), sql.Identifier("t"), rows.to_arrow())
    kept.committed(conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0])
    conn.commit()


def test_rows_another_writer_changed_send_the_export_to_the_table(db_url, tmp_path):
    rows = pl.DataFrame({"k": [3, 1, 2], "v": [0.5, 10.0, 2.25]})
    path = tmp_path / "t.csv"
    with psycopg.connect(db_url) as conn:
        kept = kept_table(conn, rows, path)
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "memory"
        assert path.read_bytes() == b"k,v\n1,10\n2,2.25\n3,0.5\n"
        with psycopg.connect(db_url, autocommit=True) as other:  # same number of rows, one value changed
            other.execute("UPDATE t SET v = 7 WHERE k = 2")
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "table"
        assert path.read_bytes() == b"k,v\n1,10\n2,7\n3,0.5\n"
        with psycopg.connect(db_url, autocommit=True) as other:
            other.execute("UPDATE t SET v = 2.25 WHERE k = 2; INSERT INTO t VALUES (4, 1)")
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "table"
        assert path.read_bytes().endswith(b"4,1\n")


def test_rows_too_big_to_keep_are_let_go(db_url, tmp_path):
    rows = pl.DataFrame({"k": range(1000), "v": [1.5] * 1000})
    path = tmp_path / "t.csv"
    with psycopg.connect(db_url) as conn:
        kept = kept_table(conn, rows, path)
        small = ExportRows({"t": (["k"], path)}, limit=rows.estimated_size() // 2)
        small.rows("t", rows)
        small.committed(kept.xids[0])
        assert small.frames["t"] is None
        assert write_export(conn, "p", "public", "t", ["k"], path, small) == "table"
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "memory"


def counting_formats(monkeypatch) -> list[int]:
    """The heights of the frames postgres_csv formats from now on."""
    import chute.load.export

    formatted: list[int] = []
    monkeypatch.setattr(chute.load.export, "postgres_csv", lambda rows: formatted.append(rows.height) or postgres_csv(rows))
    return formatted


def test_units_in_key_order_are_appended_to_the_file_as_they_are_written(db_url, tmp_path, monkeypatch):
    formatted = counting_formats(monkeypatch)
    path = tmp_path / "out" / "t.csv"
    first, second = pl.DataFrame({"k": [3, 1, 2], "v": [0.5, 10.0, 2.25]}), pl.DataFrame({"k": [5, 4], "v": [1e-05, 0.0]})
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE t (k bigint PRIMARY KEY, v float8)")
        kept = ExportRows({"t": (["k"], path)})
        load_unit(conn, kept, first)
        load_unit(conn, kept, second)
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "memory"
        assert path.read_bytes() == server_csv(conn, "SELECT * FROM t ORDER BY k")
    assert formatted == [3, 2]  # each unit's rows formatted once, as they came; never the whole again
    assert path.read_bytes() == b"k,v\n1,10\n2,2.25\n3,0.5\n4,0\n5,1e-05\n"
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]


def test_units_whose_keys_go_back_are_written_again_as_a_whole(db_url, tmp_path, monkeypatch):
    formatted = counting_formats(monkeypatch)
    path = tmp_path / "t.csv"
    key = ["name", "day"]
    units = [pl.DataFrame({"name": ["b", "b"], "day": [datetime.date(2020, 1, 2), datetime.date(2020, 1, 1)]}),
             pl.DataFrame({"name": ["a", "c"], "day": [datetime.date(2021, 1, 1)] * 2})]
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE t (name text, day date, PRIMARY KEY (name, day))")
        kept = ExportRows({"t": (key, path)})
        for rows in units:
            load_unit(conn, kept, rows)
        assert write_export(conn, "p", "public", "t", key, path, kept) == "memory"
        assert path.read_bytes() == server_csv(conn, "SELECT * FROM t ORDER BY name, day")
    assert formatted == [2, 4]  # the first unit was appended; "a" comes before "b": all again, sorted
    assert path.read_bytes().splitlines()[1:] == [b"a,2021-01-01", b"b,2020-01-01", b"b,2020-01-02", b"c,2021-01-01"]


def test_a_file_written_from_rows_that_rolled_back_is_written_again(db_url, tmp_path):
    path = tmp_path / "t.csv"
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE t (k bigint PRIMARY KEY, v float8)")
        kept = ExportRows({"t": (["k"], path)})
        kept.rows("t", pl.DataFrame({"k": [1], "v": [9.0]}))  # appended to the file at once...
        kept.reset()  # ...but that unit rolled back; its files are loaded again on their own
        load_unit(conn, kept, pl.DataFrame({"k": [2, 1], "v": [0.5, 1.0]}))
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "memory"
    assert path.read_bytes() == b"k,v\n1,1\n2,0.5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no partial file left behind


def test_a_write_nobody_takes_leaves_no_file(tmp_path):
    kept = ExportRows({"t": (["k"], tmp_path / "t.csv")})
    kept.rows("t", pl.DataFrame({"k": range(600_000), "v": [1.5] * 600_000}))
    kept.close()  # the run failed before its exports
    assert list(tmp_path.iterdir()) == []


def test_rows_of_a_unit_that_rolled_back_are_not_kept(tmp_path):
    kept = ExportRows({"t": (["k"], tmp_path / "t.csv")})
    kept.rows("t", pl.DataFrame({"k": [1]}))
    kept.reset()
    kept.rows("t", pl.DataFrame({"k": [2]}))
    kept.committed(10)
    assert [k.frame["k"].to_list() for k in kept.frames["t"]] == [[2]]
    kept.close()


def test_only_tables_a_run_may_fill_alone_keep_their_rows(db_url):
    from chute.load.export import first_loads
    from chute.config.project import Table

    k = {"k": "integer"}
    tables = {"empty": Table(columns=k, export="e.csv"), "loaded": Table(columns=k, export="f.csv"),
              "replaced": Table(columns=k, mode="replace", export="r.csv"), "plain": Table(columns=k)}
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE empty (k int); CREATE TABLE loaded (k int); INSERT INTO loaded VALUES (1);"
                     "CREATE TABLE replaced (k int); INSERT INTO replaced VALUES (1); CREATE TABLE plain (k int)")
        assert first_loads(conn, tables) == {"empty", "replaced"}


def test_rows_appended_in_key_order_are_let_go_past_a_limit_and_a_later_break_goes_to_the_table(db_url, tmp_path):
    """Units in key order are formatted into the file as they come; past `appended_limit` bytes
    their frames are not kept (the stocks run's 2 M rows cost ~200 MB of peak memory). The file
    still comes from memory; if a later unit breaks the order, it comes from the table."""
    path = tmp_path / "t.csv"
    units = [pl.DataFrame({"k": [i * 10 + j for j in range(10)], "v": [0.5] * 10}) for i in range(4)]
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE t (k bigint PRIMARY KEY, v float8)")
        kept = ExportRows({"t": (["k"], path)}, appended_limit=units[0].estimated_size())
        for rows in units:
            load_unit(conn, kept, rows)
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "memory"
        assert sum(k.frame is None for k in kept.frames["t"]) >= 2  # let go once in the file
        assert path.read_bytes() == server_csv(conn, "SELECT * FROM t ORDER BY k")

        conn.execute("DROP TABLE t")
        conn.execute("CREATE TABLE t (k bigint PRIMARY KEY, v float8)")
        kept = ExportRows({"t": (["k"], path)}, appended_limit=units[0].estimated_size())
        for rows in [*units, pl.DataFrame({"k": [-1, 105], "v": [1.0, 2.0]})]:  # keys go back to -1
            load_unit(conn, kept, rows)
        assert write_export(conn, "p", "public", "t", ["k"], path, kept) == "table"
        assert path.read_bytes() == server_csv(conn, "SELECT * FROM t ORDER BY k")
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_a_table_with_no_key_is_exported_from_memory_in_first_column_order(db_url, tmp_path, monkeypatch):
    """No primary key: the export is `ORDER BY 1`, the first column, NULLs last as PostgreSQL
    puts them. Written from memory too (it was read back from the table: ~3.7 s on the stocks
    run's 2.1 M rows against ~0.1 s). Units in first-column order are appended as they come."""
    formatted = counting_formats(monkeypatch)
    path = tmp_path / "t.csv"
    units = [pl.DataFrame({"day": [datetime.date(2020, 1, 3), datetime.date(2020, 1, 1)], "v": ["c", "a"]}),
             pl.DataFrame({"day": [datetime.date(2020, 1, 4), datetime.date(2020, 1, 5)], "v": ["d", "e"]}),
             pl.DataFrame({"day": [None, datetime.date(2020, 1, 2)], "v": ["n", "b"]})]
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE t (day date, v text)")
        kept = ExportRows({"t": ([], path)})
        for rows in units:
            load_unit(conn, kept, rows)
        assert write_export(conn, "p", "public", "t", [], path, kept) == "memory"
        assert path.read_bytes() == server_csv(conn, "SELECT * FROM t ORDER BY 1")
    assert formatted == [2, 2, 6]  # two units appended; the third goes back (and holds a NULL): all again
    assert path.read_bytes().splitlines()[1:] == [b"2020-01-01,a", b"2020-01-02,b", b"2020-01-03,c",
                                                  b"2020-01-04,d", b"2020-01-05,e", b",n"]
