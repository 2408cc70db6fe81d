"""The stocks example's job in DuckDB SQL, in one process: bench_stocks.py's peer of `chute run`.

    python benchmarks/_stocks_duckdb.py PROJECT OUT_CSV URL TABLE [--create]

PROJECT is a stocks project (`chute init DIR --example stocks`). The SQL does what its
chute.toml and pipeline.py do:
- select files: those under landing/ matching `*.us.txt` or `*.us.csv` (subfolders too) whose
  ticker (pipeline.py `ticker_of`: 'aav.us.txt' -> 'aav', lower case) is named in
  reference/top_companies.txt (one line of quoted, comma-separated file names);
- read and compute: read them as CSV with a header and add, per row (no window, no rounding),
  daily_percent_change = (Close - Open) / Open * 100, NULL when Open is 0, value_change =
  Close - Open, company_name = the file's ticker; into a temporary table (in memory);
- write csv: every row, to OUT_CSV with `COPY ... TO` (header; the same values as chute's file,
  though DuckDB writes 17.0 where PostgreSQL writes 17). In DuckDB's own order, its fastest:
  chute's export is sorted by the primary key (company_name, stock_date), which would cost
  DuckDB ~0.7 s more here;
- attach, insert: `ATTACH URL (TYPE postgres)` and `INSERT INTO pg.public.TABLE BY NAME`, a
  table that must exist with the target's columns; with --create, `CREATE TABLE pg.public.TABLE
  AS SELECT * FROM result` instead: a new table, no key, DuckDB's fastest way in (bench_stocks
  runs both; for the first it creates the table `LIKE
  historical_stocks_data INCLUDING ALL`: the same types and primary key as chute's target).
DuckDB's fair best: in memory, default settings, so all cores as threads (and 80% of RAM as
its limit); the files' whole layout is given (`columns`, the 7 columns the generator writes,
`auto_detect = false`), so no file is sniffed (sniffing each file costs ~1 s more over 1,000
files). The postgres extension must be installed (bench_stocks does it first, outside the
timings: `duckdb_extensions.import_extension("postgres")`). Prints one JSON line: rows, files,
DuckDB's version and threads, seconds per step.
"""

import json
import os
import sys
import time

import duckdb

TICKER = r"'^(?:.*/)?(.+?)\.us\.[^/]*$', 1, 'i'"  # pipeline.py ticker_of: 'aav.us.txt' -> 'aav' (then lower)

SELECT_FILES = rf"""
SET VARIABLE files = (
    WITH listed AS (  -- one line of quoted file names: 'aav.us.csv', 'ajg.us.csv',...
        SELECT DISTINCT lower(regexp_extract(trim(trim(name, E' \t\r\n'), '''"'), {TICKER})) AS ticker
        FROM read_text('reference/top_companies.txt'), unnest(string_split(content, ',')) AS names(name)
    ), landing AS (
        SELECT file FROM glob('landing/**/*.us.txt') UNION ALL SELECT file FROM glob('landing/**/*.us.csv')
    )
    SELECT list(file ORDER BY file) FROM landing
    WHERE lower(regexp_extract(file, {TICKER})) IN (SELECT ticker FROM listed WHERE ticker <> '')
)"""

READ_AND_COMPUTE = rf"""
CREATE TEMP TABLE result AS
SELECT "Date" AS stock_date, "Open" AS open_value, "High" AS high_value, "Low" AS low_value,
       "Close" AS close_value, "Volume" AS volume_traded,
       CASE WHEN "Open" <> 0 THEN ("Close" - "Open") / "Open" * 100 END AS daily_percent_change,
       "Close" - "Open" AS value_change,
       lower(regexp_extract(filename, {TICKER})) AS company_name
FROM read_csv(getvariable('files'), header = true, filename = true, auto_detect = false,
              columns = {{'Date': 'DATE', 'Open': 'DOUBLE', 'High': 'DOUBLE', 'Low': 'DOUBLE', 'Close': 'DOUBLE',
                         'Volume': 'BIGINT', 'OpenInt': 'BIGINT'}})"""

EXPORT = "SELECT * FROM result"  # unordered: DuckDB's best (see above)


def literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def steps(out: str, url: str, table: str, create: bool = False) -> list[tuple[str, str]]:
    """(name, SQL) of each step, in order."""
    return [
        ("select files", SELECT_FILES),
        ("read and compute", READ_AND_COMPUTE),
        ("write csv", f"COPY ({EXPORT}) TO {literal(out)} (FORMAT csv, HEADER)"),
        ("attach", f"ATTACH {literal(url)} AS pg (TYPE postgres)"),
        ("create table as" if create else "insert",
         f"CREATE TABLE pg.public.{table} AS SELECT * FROM result" if create
         else f"INSERT INTO pg.public.{table} BY NAME SELECT * FROM result"),
    ]


def main() -> None:
    project, out, url, table = sys.argv[1:5]
    out = os.path.abspath(out)
    os.chdir(project)  # the SQL's paths are the project's, as chute.toml's are
    con = duckdb.connect()
    con.execute("LOAD postgres")
    seconds = {}
    for name, sql in steps(out, url, table, create="--create" in sys.argv[5:]):
        t0 = time.perf_counter()
        con.execute(sql)
        seconds[name] = round(time.perf_counter() - t0, 3)
    rows = con.execute("SELECT count(*) FROM result").fetchone()[0]
    files = con.execute("SELECT len(getvariable('files'))").fetchone()[0]
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(json.dumps({"rows": rows, "files": files, "duckdb": duckdb.__version__, "threads": threads,
                      "seconds": seconds}))


if __name__ == "__main__":
    main()
