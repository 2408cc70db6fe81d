"""The stocks example end to end against a real PostgreSQL: exactly once, re-runs,
renamed and changed files, the real sample files, and the processed export."""

from __future__ import annotations

import csv
import json
import os
import shutil

import polars as pl
import psycopg
import pytest

from conftest import STOCK_FILES, TOP_FILES, shared, write

TABLE = "historical_stocks_data"


def expected_rows(folder) -> pl.DataFrame:
    """An independent computation of what the table should hold, straight from the files."""
    text = (folder / "reference" / "top_companies.txt").read_text()
    top = {p.strip().strip("'\"").split(".us.")[0] for p in text.split(",") if p.strip()}
    frames = []
    for path in sorted((folder / "landing").glob("*.us.*")):
        ticker = path.name.split(".us.")[0]
        if ticker in top:
            frames.append(pl.read_csv(path).select("Date", "Open", "Close").with_columns(company=pl.lit(ticker)))
    return pl.concat(frames)


def test_run_loads_top_companies_with_changes(stocks, cli, query):
    result = cli("run", "-p", stocks, "--json")
    summary = json.loads(result.output)
    expected = expected_rows(stocks)
    assert summary["status"] == "succeeded"
    assert summary["files_loaded"] == TOP_FILES
    assert summary["rows_loaded"] == expected.height
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == expected.height
    assert {r[0] for r in query(f"SELECT DISTINCT company_name FROM {TABLE}")} == set(expected["company"].unique())
    # daily_percent_change and value_change follow the formula, NULL when Open is 0
    bad = query(f"""SELECT count(*) FROM {TABLE} WHERE value_change <> close_value - open_value
                    OR (open_value <> 0 AND abs(daily_percent_change - (close_value - open_value) / open_value * 100) > 1e-9)
                    OR (open_value = 0 AND daily_percent_change IS NOT NULL)""")
    assert bad[0][0] == 0
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s", (TABLE,)))
    assert types["stock_date"] == "date" and types["volume_traded"] == "bigint"
    assert types["open_value"] == "double precision"
    pk = query("""SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
                  AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary""", (TABLE,))
    assert {r[0] for r in pk} == {"company_name", "stock_date"}


def test_ledger_records_every_file_and_the_run(stocks, cli, query):
    cli("run", "-p", stocks)
    files = query("SELECT name, status, size, length(sha256), rows_read, rows_loaded FROM chute.files")
    assert len(files) == TOP_FILES  # the files of other companies are never read, nor settled
    on_disk = {p.name: p.stat().st_size for p in (stocks / "landing").iterdir()}
    for name, status, size, sha_len, rows_read, rows_loaded in files:
        assert status == "loaded" and size == on_disk[name] and sha_len == 64
        assert rows_read == len((stocks / "landing" / name).read_text().splitlines()) - 1
        assert rows_loaded == rows_read
    runs = query("SELECT status, files_loaded, rows_loaded, ended_at IS NOT NULL FROM chute.runs")
    assert runs == [("succeeded", TOP_FILES, expected_rows(stocks).height, True)]


def test_a_company_added_to_the_top_list_is_loaded_next_run(stocks, cli, query):
    first = json.loads(cli("run", "-p", stocks, "--json").output)
    assert first["excluded"] == STOCK_FILES - TOP_FILES
    top = stocks / "reference" / "top_companies.txt"
    listed = top.read_text()
    newcomer = next(p.name for p in sorted((stocks / "landing").iterdir())
                    if f"'{p.name.replace('.us.txt', '.us.csv')}'" not in listed)
    top.write_text(listed.strip() + f", '{newcomer.replace('.us.txt', '.us.csv')}'")
    second = json.loads(cli("run", "-p", stocks, "--json").output)
    assert second["files_loaded"] == 1 and second["excluded"] == STOCK_FILES - TOP_FILES - 1
    ticker = newcomer.split(".us.")[0]
    assert query(f"SELECT count(*) FROM {TABLE} WHERE company_name = %s", (ticker,))[0][0] > 0


def test_second_run_loads_nothing(stocks, cli, query):
    cli("run", "-p", stocks)
    before = query(f"SELECT count(*) FROM {TABLE}")[0][0]
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert summary["files_loaded"] == 0 and summary["unchanged"] == TOP_FILES
    assert summary["excluded"] == STOCK_FILES - TOP_FILES
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == before
    assert query("SELECT count(*) FROM chute.files")[0][0] == TOP_FILES


def test_same_content_under_new_name_is_skipped(stocks, cli, query):
    cli("run", "-p", stocks)
    first = query("SELECT name FROM chute.files ORDER BY name LIMIT 1")[0][0]
    (stocks / "landing" / "again").mkdir()
    shutil.copy(stocks / "landing" / first, stocks / "landing" / "again" / first)
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert summary["files_skipped"] == 1 and summary["files_loaded"] == 0
    row = query("SELECT status, duplicate_of IS NOT NULL, error FROM chute.files WHERE name = %s", (f"again/{first}",))
    assert row[0][0] == "skipped" and row[0][1] and first in row[0][2]


def test_touched_file_with_same_content_is_not_reloaded(stocks, cli, query):
    cli("run", "-p", stocks)
    path = stocks / "landing" / query("SELECT name FROM chute.files LIMIT 1")[0][0]
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    # hashed, found to be the very content it loaded: counted unchanged, its ledger row stays loaded
    assert summary["files_loaded"] == 0 and summary["files_skipped"] == 0 and summary["unchanged"] == TOP_FILES
    assert query("SELECT status, mtime_ns FROM chute.files WHERE name = %s", (path.name,)) == \
        [("loaded", path.stat().st_mtime_ns)]


def test_changed_content_same_name_merges_by_key(tmp_path, cli, query):
    from chute.examples.scaffold import create_project

    folder = tmp_path / "p"
    create_project(folder, "stocks", files=0)
    write(folder / "reference" / "top_companies.txt", "'abc.us.csv', 'xyz.us.csv'")
    write(folder / "landing" / "abc.us.txt", "Date,Open,High,Low,Close,Volume,OpenInt\n"
          "2017-01-02,10,11,9,10.5,100,0\n2017-01-03,10.5,12,10,11,200,0\n")
    cli("run", "-p", folder)
    # A corrected re-upload: one price changed, one day added.
    write(folder / "landing" / "abc.us.txt", "Date,Open,High,Low,Close,Volume,OpenInt\n"
          "2017-01-02,10,11,9,10.75,100,0\n2017-01-03,10.5,12,10,11,200,0\n2017-01-04,11,11.5,10.5,11.2,50,0\n")
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["files_loaded"] == 1
    rows = query(f"SELECT stock_date::text, close_value FROM {TABLE} ORDER BY stock_date")
    assert rows == [("2017-01-02", 10.75), ("2017-01-03", 11.0), ("2017-01-04", 11.2)]
    assert query("SELECT count(*) FROM chute.files WHERE name = 'abc.us.txt'")[0][0] == 2  # both versions kept


def test_real_sample_files(tmp_path, cli, query):
    """../shared/data/stocks: blj has Open = 0 on one day; gs_i-cl has stock_id instead of OpenInt."""
    from chute.examples.scaffold import create_project

    data = shared("stocks")
    folder = tmp_path / "real"
    create_project(folder, "stocks", files=0)
    shutil.copy(data / "top_companies.txt", folder / "reference" / "top_companies.txt")
    for path in data.glob("*.us*.txt"):  # the variant sample lands under its original name
        shutil.copy(path, folder / "landing" / path.name.replace(".us.stock_id_variant.txt", ".us.txt"))
    summary = json.loads(cli("run", "-p", folder, "--json").output)
    assert summary["files_failed"] == 0 and summary["files_loaded"] == 5
    total = sum(len(p.read_text().splitlines()) - 1 for p in data.glob("*.us*.txt"))
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == total
    zero = query(f"SELECT open_value, daily_percent_change, value_change FROM {TABLE}"
                 " WHERE company_name = 'blj' AND stock_date = '2008-02-07'")
    assert zero == [(0.0, None, 12.138)]
    assert query(f"SELECT count(*) FROM {TABLE} WHERE company_name = 'gs_i-cl'")[0][0] == 17


def test_processed_export_matches_table(stocks, cli, query):
    cli("run", "-p", stocks)
    path = stocks / "processed" / "historical_stock_data.csv"
    with path.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["stock_date", "open_value", "high_value", "low_value", "close_value", "volume_traded",
                       "daily_percent_change", "value_change", "company_name"]
    assert len(rows) - 1 == query(f"SELECT count(*) FROM {TABLE}")[0][0]


def test_run_without_top_companies_reference_fails_clearly(stocks, cli, db_url):
    (stocks / "reference" / "top_companies.txt").unlink()
    result = cli("run", "-p", stocks, expect=2)
    assert "reference 'top_companies'" in result.output and "not found" in result.output


def twins(stocks, query, names: list[str]) -> bytes:
    """Top companies `names` whose files hold the very bytes of a loaded company's file."""
    top = (stocks / "reference" / "top_companies.txt").read_text().strip()
    source = query("SELECT name FROM chute.files WHERE status = 'loaded' ORDER BY name LIMIT 1")[0][0]
    data = (stocks / "landing" / source).read_bytes()
    write(stocks / "reference" / "top_companies.txt", top + "".join(f", '{n}'" for n in names))
    for name in names:
        write(stocks / "landing" / name, data)
    return data


def company_rows(query) -> dict[str, int]:
    return dict(query(f"SELECT company_name, count(*) FROM {TABLE} GROUP BY 1"))


@pytest.mark.parametrize("batch_mb", [None, "0.001"], ids=["read whole", "streamed"])
def test_a_file_name_that_is_data_loads_identical_bytes_under_each_name(stocks, cli, query, batch_mb):
    """The company comes from the file name: the same bytes under another ticker are that
    ticker's rows, not a duplicate (a copy under the same ticker elsewhere still is)."""
    if batch_mb:  # every file bigger than a batch: streamed, its hash known only as it loads
        config = stocks / "chute.toml"
        config.write_text(config.read_text().replace('header = true', f'header = true\nbatch_mb = {batch_mb}'))
    cli("run", "-p", stocks)
    data = twins(stocks, query, ["zzza.us.csv", "zzzb.us.csv"])  # two new names in one run, same bytes as a loaded file
    rows = data.decode().count("\n") - 1
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert (summary["files_loaded"], summary["files_skipped"]) == (2, 0), summary["files"]
    counts = company_rows(query)
    assert counts["zzza"] == counts["zzzb"] == rows
    assert query("SELECT count(*) FROM chute.files WHERE by_name AND status = 'loaded'") == [(2,)]

    (stocks / "landing" / "again").mkdir()
    write(stocks / "landing" / "again" / "zzza.us.csv", data)  # the same ticker: same rows, a duplicate
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert (summary["files_loaded"], summary["files_skipped"]) == (0, 1), summary["files"]
    assert company_rows(query) == counts


def test_same_content_skip_skips_by_content_alone(stocks, cli, query):
    config = stocks / "chute.toml"
    config.write_text(config.read_text().replace('header = true', 'header = true\nsame_content = "skip"'))
    cli("run", "-p", stocks)
    twins(stocks, query, ["zzza.us.csv"])
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert (summary["files_loaded"], summary["files_skipped"]) == (0, 1)
    assert "zzza" not in company_rows(query)


def test_a_ledger_from_before_names_as_data_is_migrated(stocks, cli, query, db_url):
    cli("run", "-p", stocks)
    with psycopg.connect(db_url) as conn:  # the ledger as chute made it before
        conn.execute("DROP INDEX chute.files_loaded_content_once; ALTER TABLE chute.files DROP COLUMN by_name;"
                     " CREATE UNIQUE INDEX files_content_loaded_once ON chute.files (pipeline, sha256)"
                     " WHERE status IN ('loaded', 'loaded_with_rejects')")
    twins(stocks, query, ["zzza.us.csv"])
    summary = json.loads(cli("run", "-p", stocks, "--json").output)
    assert summary["files_loaded"] == 1, summary["files"]
    indexes = {r[0] for r in query("SELECT indexname FROM pg_indexes WHERE schemaname = 'chute'"
                                   " AND tablename = 'files'")}
    assert "files_loaded_content_once" in indexes and "files_content_loaded_once" not in indexes
