"""`chute load` when the file does not fit: its rejects, --replay, --drift, --quote, and
messages that name the command's options (it has no chute.toml)."""

from __future__ import annotations

import json

import psycopg

from conftest import write


def _execute(db_url: str, statement: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(statement)


def _lines(n: int) -> str:
    return "".join(f"{i},{i % 100},{'x' * 40}\n" for i in range(n))


def test_a_late_value_that_does_not_fit_the_inferred_type_is_a_reject_with_its_line(tmp_path, cli, query, db_url):
    # the types come from the first 16 MB: 'amount' is a whole number there
    path = write(tmp_path / "late.csv", "id,amount,note\n" + _lines(400_000) + "400000,12.5,late\n")
    assert path.stat().st_size > 17 << 20
    result = cli("load", path, "--into", "late")
    assert "1 rejected (chute rejects list --pipeline load:public.late)" in " ".join(result.output.split())
    assert query("SELECT data_type FROM information_schema.columns WHERE table_name = 'late' "
                 "AND column_name = 'amount'") == [("bigint",)]
    listed = json.loads(cli("rejects", "list", "--pipeline", "load:public.late", "--json").output)
    assert [(r["line_number"], r["column_name"], r["value"], r["reason"]) for r in listed] == [
        (400_002, "amount", "12.5", "not a valid bigint")]
    assert query("SELECT count(*) FROM late")[0][0] == 400_000


def test_replay_loads_the_rejects_again_after_the_column_is_widened(tmp_path, cli, query, db_url):
    _execute(db_url, "CREATE TABLE prices (sku text, price bigint)")
    path = write(tmp_path / "p.csv", "sku,price\nA,1\nB,2.5\nC,oops\n")
    cli("load", path, "--into", "prices")
    assert query("SELECT sku FROM prices") == [("A",)]
    nothing = json.loads(cli("load", path, "--into", "prices", "--replay", "--json").output)
    assert nothing["records_replayed"] == 0  # the table is as it was: both still fail
    _execute(db_url, "ALTER TABLE prices ALTER COLUMN price TYPE double precision")
    done = json.loads(cli("load", path, "--into", "prices", "--replay", "--json").output)
    assert done["records_replayed"] == 1 and done["files"][0]["records_still_failing"] == 1
    assert query("SELECT sku, price FROM prices ORDER BY sku") == [("A", 1.0), ("B", 2.5)]
    states = json.loads(cli("rejects", "list", "--pipeline", "load:public.prices", "--state", "all", "--json").output)
    assert {r["value"]: r["replay_state"] for r in states} == {"2.5": "replayed", "oops": "pending"}
    again = json.loads(cli("load", path, "--into", "prices", "--replay", "--json").output)
    assert again["records_replayed"] == 0  # a replayed record never loads twice
    assert query("SELECT count(*) FROM prices")[0][0] == 2
    assert query("SELECT status, rows_loaded, rows_rejected FROM chute.files") == [("loaded_with_rejects", 2, 1)]


def test_replay_of_a_table_that_does_not_exist_says_so(tmp_path, cli, db_url):
    path = write(tmp_path / "p.csv", "a\n1\n")
    assert "there is no table public.nope" in cli("load", path, "--into", "nope", "--replay", expect=2).output


def test_a_ragged_row_in_a_new_table_is_a_reject_and_its_rejects_need_no_project(tmp_path, cli, query, db_url,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)  # no chute.toml here
    ragged = write(tmp_path / "q.csv", "a,b\n1,2\n3\n")
    cli("load", ragged, "--into", "q")  # the types come from the records that parse
    assert query("SELECT a, b FROM q") == [(1, 2)]
    listed = json.loads(cli("rejects", "list", "--pipeline", "load:public.q", "--json").output)
    assert [r["line_number"] for r in listed] == [3]
    shown = json.loads(cli("rejects", "show", str(listed[0]["reject_id"]), "--pipeline", "load:public.q",
                           "--json").output)
    assert shown["raw_record"] == "3"
    cli("rejects", "export", tmp_path / "r.csv", "--pipeline", "load:public.q")
    assert (tmp_path / "r.csv").read_text().count("\n") == 2  # header and one reject
    assert "no chute.toml" in cli("rejects", "list", expect=2).output  # without --pipeline: a project's


def test_drift_adds_or_leaves_out_columns_an_existing_table_lacks(tmp_path, cli, query, db_url):
    _execute(db_url, "CREATE TABLE t (a int, b int)")
    extra = write(tmp_path / "extra.csv", "a,b,c\n1,2,3\n")
    failed = json.loads(cli("load", extra, "--into", "t", "--json", expect=1).output)
    assert "column(s) c that the table does not have" in failed["files"][0]["error"]
    assert "set --drift evolve (adds them)" in failed["files"][0]["error"]
    cli("load", extra, "--into", "t", "--drift", "evolve")  # the failed file is tried again: it was named
    assert query("SELECT a, b, c FROM t") == [(1, 2, 3)]
    fewer = write(tmp_path / "fewer.csv", "a,b\n4,5\n")
    failed = json.loads(cli("load", fewer, "--into", "t", "--json", expect=1).output)
    assert "set --drift discard to load its rows with them NULL" in failed["files"][0]["error"]
    cli("load", fewer, "--into", "t", "--drift", "discard")
    assert query("SELECT a, b, c FROM t ORDER BY a") == [(1, 2, 3), (4, 5, None)]


def test_quote_option_reads_fields_quoted_with_another_character(tmp_path, cli, query, db_url):
    path = write(tmp_path / "sq.csv", "name,city\nLee,Rome\n'Smith, J',Oslo\n")
    assert "1 rejected" in cli("load", path, "--into", "sq", "--quote", '"').output  # the comma splits
    sniffed = json.loads(cli("load", path, "--into", "sq1", "--json").output)  # ' sniffed as the quote
    assert sniffed["schema"]["dialect"]["quote"] == "'" and sniffed["rows_rejected"] == 0
    cli("load", path, "--into", "sq2", "--quote", "'")
    assert query("SELECT name, city FROM sq2 ORDER BY name") == [("Lee", "Rome"), ("Smith, J", "Oslo")]
    assert "--quote" in cli("load", path, "--into", "sq3", "--quote", "''", expect=2).output


def test_messages_name_the_options_of_the_command(tmp_path, cli, db_url):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,b\n1,caf\u00e9\n".encode("latin-1"))
    out = " ".join(cli("load", latin, "--into", "l", "--encoding", "utf-8", expect=2).output.split())
    assert "set --encoding to the file's encoding" in out and "[source]" not in out
    open_quote = write(tmp_path / "open.csv", 'a,b\n1,"never closed\n2,3\n')
    out = " ".join(cli("load", open_quote, "--into", "o", expect=2).output.split())  # while inferring
    assert "set --quote to another character" in out
    cli("load", latin, "--into", "l", "--encoding", "latin-1")


def test_status_shows_the_ledger_of_a_load_without_a_project(tmp_path, cli, db_url):
    good = write(tmp_path / "good.csv", "sku,price\nA,1\nB,2\n")
    cli("load", good, "--into", "prices")
    _execute(db_url, "CREATE TABLE strict (sku text, price bigint NOT NULL)")
    bad = write(tmp_path / "bad.csv", "sku,price\nA,\n")
    cli("load", bad, "--into", "strict", expect=1)
    shown = json.loads(cli("status", "--pipeline", "load:public.prices", "--json").output)
    assert shown["pipeline"] == "load:public.prices" and shown["files"] == {"loaded": 1}
    assert [(r["status"], r["rows_loaded"]) for r in shown["runs"]] == [("succeeded", 2)]
    assert shown["overview"] is None  # no landing zone to count
    failed = cli("status", "--pipeline", "load:public.strict").output
    assert "bad.csv" in failed and "null value" in failed
    unknown = cli("status", "--pipeline", "load:public.nope", expect=2).output
    assert "no ledger rows for it; it has load:public.prices, load:public.strict" in " ".join(unknown.split())


def test_a_table_made_by_hand_after_the_ledger_exists_is_the_one_chute_load_fills(tmp_path, cli, query, db_url):
    """The embedded cluster's role and the ledger's schema are both `chute`: PostgreSQL's default
    search_path put an unqualified CREATE TABLE into the ledger's schema, chute load created a
    second table in public, and an unqualified SELECT read the empty one."""
    cli("load", write(tmp_path / "first.csv", "a\n1\n"), "--into", "first")  # the ledger's schema now exists
    _execute(db_url, "CREATE TABLE prices (sku text, price bigint)")
    cli("load", write(tmp_path / "p.csv", "sku,price\nA,1\nB,2\n"), "--into", "prices")
    assert query("SELECT count(*) FROM prices") == [(2,)]
    assert query("SELECT to_regclass('chute.prices') IS NULL") == [(True,)]


def test_status_in_a_load_folder_points_at_the_load_pipelines(tmp_path, cli, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the user ran chute load: no chute.toml
    assert "create a project with `chute init`" in cli("status", expect=2).output  # nothing loaded yet
    cli("load", write(tmp_path / "prices.csv", "sku,price\nA,1\n"), "--into", "prices")
    cli("load", write(tmp_path / "stock.csv", "sku,n\nA,1\n"), "--into", "shop.stock")
    said = " ".join(cli("status", expect=2).output.split())
    assert "no chute.toml in" in said
    assert ("chute status --pipeline load:public.prices (it has load:public.prices, load:shop.stock)" in said), said
    said = " ".join(cli("rejects", "list", expect=2).output.split())
    assert "--pipeline load:public.prices" in said
