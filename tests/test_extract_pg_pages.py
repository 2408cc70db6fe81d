"""A PostgreSQL source's pages read into Arrow by ADBC (extract/pg_pages.py) against the
generic path (rows as Python objects), on a real source database: the same values, the same
watermark, and the generic path for what ADBC cannot read exactly."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chute.extract import pg_pages, run_extract
from chute.config.project import project_from_dict

TYPES = """
CREATE TABLE wide (id int8 PRIMARY KEY, small int2, medium int4, price float8, ok bool, name text,
                   code varchar(8), fixed char(4), day date, at_time time, naive timestamp, updated timestamptz NOT NULL,
                   blob bytea, amount numeric(10,2), free numeric, doc json, docb jsonb, ref uuid)
"""
ROWS = """
INSERT INTO wide
SELECT i, i % 300, i * 1000, i / 3.0, i % 2 = 0, 'name ' || i || ' é', 'c' || i, 'f' || (i % 10),
       date '2024-02-28' + i, time '10:00' + i * interval '1 minute', timestamp '2025-03-30 01:30' + i * interval '1 hour',
       timestamptz '2025-01-01 00:00+00' + (i / 3) * interval '1 minute', decode(lpad(to_hex(i), 4, '0'), 'hex'),
       i * 1.25, i / 7.0, json_build_object('i', i, 's', 'x y'), jsonb_build_object('i', i),
       md5(i::text)::uuid
  FROM generate_series(1, 95) AS i;
INSERT INTO wide (id, updated) VALUES (1000, timestamptz '2025-01-02 00:00+00');  -- every other column NULL
"""


def project_for(tmp_path, url: str, **spec):
    spec = {"kind": "database", "url": url, "table": "wide", "key": "id", "cursor": "updated", "batch_size": 10,
            **spec}
    return project_from_dict({"project": {"name": "wide"}, "landing": {"patterns": ["*.parquet"]},
                              "extract": {"wide": spec}}, tmp_path)


def extract(tmp_path, url: str, *, generic: bool, monkeypatch, **spec):
    """Run the extraction once; return (its report, its parts, how many pages ADBC read)."""
    read = []
    with monkeypatch.context() as m:
        if generic:
            m.setattr(pg_pages, "open_pages", lambda *args: None)
        real = pg_pages.Pages.page

        def counted(self, statement, types):
            page = real(self, statement, types)
            read.append(page is not None)
            return page

        m.setattr(pg_pages.Pages, "page", counted)
        project = project_for(tmp_path, url, **spec)
        report = run_extract(project, "wide")
    return report, [pq.read_table(project.landing_path / f) for f in report.files], sum(read)


@pytest.fixture
def wide_source(source_pg):
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute(TYPES)
        conn.execute(ROWS)
    return source_pg


def test_adbc_pages_hold_the_values_and_watermark_of_the_generic_path(tmp_path, wide_source, monkeypatch):
    fast, fast_parts, adbc_pages = extract(tmp_path / "fast", wide_source, generic=False, monkeypatch=monkeypatch)
    slow, slow_parts, none = extract(tmp_path / "slow", wide_source, generic=True, monkeypatch=monkeypatch)
    fast_rows, slow_rows = pa.concat_tables(fast_parts), pa.concat_tables(slow_parts)
    assert fast.ok and slow.ok, (fast.error, slow.error)
    assert adbc_pages == len(fast.files) == 10 and none == 0  # every page through ADBC; none without it
    assert fast.rows == slow.rows == 96
    assert fast.watermark_after == slow.watermark_after == {"cursor": {"datetime": "2025-01-02T00:00:00+00:00"},
                                                            "key": [1000]}
    assert fast_rows.column_names == slow_rows.column_names
    for name in fast_rows.column_names:
        assert fast_rows.column(name).to_pylist() == slow_rows.column(name).to_pylist(), name
    assert fast_rows.schema == slow_rows.schema
    assert fast_rows.schema.field("small").type == pa.int64() and fast_rows.schema.field("amount").type == \
        pa.decimal128(38, 2)


@pytest.mark.parametrize("sql_type, value, first", [("interval", "i * interval '1 second'", 1_000_000),
                                                     ("real", "i + 0.1", 1.1)])
def test_an_uncovered_column_type_reads_the_source_the_generic_way(tmp_path, source_pg, monkeypatch, sql_type,
                                                                    value, first):
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE wide (id int PRIMARY KEY, updated timestamptz NOT NULL, v {sql_type})")
        conn.execute(f"INSERT INTO wide SELECT i, now(), {value} FROM generate_series(1, 25) i")
    report, parts, adbc_pages = extract(tmp_path, source_pg, generic=False, monkeypatch=monkeypatch)
    assert report.ok and report.rows == 25 and adbc_pages == 0
    shown = parts[0].column("v")[0]
    assert (shown.value if sql_type == "interval" else shown.as_py()) == first  # real: 1.1, not 1.100000023841858


def test_a_page_adbc_cannot_convert_exactly_is_fetched_the_generic_way(tmp_path, source_pg, monkeypatch):
    """NaN has no decimal128: that page (only) goes the generic way, which makes the column text;
    'infinity' has no Python date: the generic path refuses it, where ADBC gave a made-up date."""
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id int PRIMARY KEY, updated timestamptz NOT NULL, amount numeric, day date)")
        conn.execute("INSERT INTO wide SELECT i, timestamptz '2025-01-01' + i * interval '1 s', "
                     "CASE WHEN i % 2 = 0 THEN i ELSE i + 0.25 END, date '2025-01-01' FROM generate_series(1, 25) i")
        conn.execute("UPDATE wide SET amount = 'NaN' WHERE id = 15")
    report, parts, adbc_pages = extract(tmp_path / "nan", source_pg, generic=False, monkeypatch=monkeypatch)
    assert report.ok and report.rows == 25 and adbc_pages == 2  # pages 1 and 3; page 2 holds the NaN
    # Once text, the column stays text for the rest of the run.
    assert [p.schema.field("amount").type for p in parts] == [pa.decimal128(38, 2), pa.string(), pa.string()]
    assert parts[1].column("amount").to_pylist()[4] == "NaN"
    assert parts[2].column("amount").to_pylist()[:2] == ["21.25", "22"]  # the source's own text

    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute("UPDATE wide SET day = 'infinity' WHERE id = 25")
        conn.execute("UPDATE wide SET updated = updated + interval '1 day' WHERE id = 25")
    again, _, _ = extract(tmp_path / "nan", source_pg, generic=False, monkeypatch=monkeypatch)
    assert not again.ok and "infinity" in again.error


def test_each_page_starts_its_index_scan_at_the_last_row_of_the_page_before(tmp_path, source_pg, monkeypatch):
    """The spelled-out (cursor, key) > (...) alone let PostgreSQL scan the index from its start and
    filter: the last of 20 pages read and threw away 1,900 rows. Now the scan starts at the page."""
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id int PRIMARY KEY, updated timestamptz NOT NULL)")
        conn.execute("CREATE INDEX ON wide (updated, id)")
        conn.execute("INSERT INTO wide SELECT i, timestamptz '2025-01-01' + i * interval '1 s' "
                     "FROM generate_series(1, 2000) i")
        conn.execute("ANALYZE wide")
    queries = []
    real = pg_pages.Pages.page

    def recorded(self, statement, types):
        queries.append(self.sql(statement))
        return real(self, statement, types)

    monkeypatch.setattr(pg_pages.Pages, "page", recorded)
    report = run_extract(project_for(tmp_path, source_pg, batch_size=100), "wide")
    assert report.ok and report.rows == 2000 and len(queries) == 20
    with psycopg.connect(source_pg) as conn:
        # The plan the benchmark's 2 M-row table got: the index in the page's order, no sort.
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + queries[-1]).fetchone()[0][0]["Plan"]
    nodes = []
    while plan:
        nodes.append(plan)
        plan = (plan.get("Plans") or [None])[0]
    # The scan at the bottom of the plan reads the page's rows and the previous page's last one.
    assert "Index" in nodes[-1]["Node Type"] and nodes[-1]["Actual Rows"] <= 101
    assert sum(n.get("Rows Removed by Filter", 0) for n in nodes) <= 1


def test_a_first_page_of_null_json_does_not_fix_the_column_type(tmp_path, source_pg, monkeypatch):
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id int PRIMARY KEY, updated timestamptz NOT NULL, doc jsonb)")
        conn.execute("INSERT INTO wide SELECT i, timestamptz '2025-01-01' + i * interval '1 s', "
                     "CASE WHEN i > 10 THEN jsonb_build_object('i', i) END FROM generate_series(1, 30) i")
    fast, fast_parts, adbc_pages = extract(tmp_path / "fast", source_pg, generic=False, monkeypatch=monkeypatch)
    slow, slow_parts, _ = extract(tmp_path / "slow", source_pg, generic=True, monkeypatch=monkeypatch)
    assert fast.ok and adbc_pages == 3
    assert [p.column("doc").to_pylist() for p in fast_parts] == [p.column("doc").to_pylist() for p in slow_parts]
    assert fast_parts[2].column("doc").to_pylist()[-1] == {"i": 30}


@pytest.mark.parametrize("cursor, key", [("amount", "ref"), ("updated", "code")])
def test_pages_keyed_by_numeric_uuid_text_and_microseconds_take_each_row_once(tmp_path, source_pg, monkeypatch,
                                                                               cursor, key):
    """The last row's cursor and key go back into the next page's query as literals: a numeric
    cursor with ties and a uuid key, or a timestamp with microseconds and a text key."""
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (ref uuid NOT NULL, code text NOT NULL, amount numeric NOT NULL,"
                     " updated timestamptz NOT NULL)")
        conn.execute("INSERT INTO wide SELECT md5(i::text)::uuid, 'c' || i || ' é', (i % 5) / 3.0,"
                     " timestamptz '2025-01-01' + (i % 9) * interval '1.000001 s' FROM generate_series(1, 60) i")
    fast, parts, adbc_pages = extract(tmp_path / "fast", source_pg, generic=False, monkeypatch=monkeypatch,
                                      cursor=cursor, key=key, batch_size=7)
    slow, slow_parts, _ = extract(tmp_path / "slow", source_pg, generic=True, monkeypatch=monkeypatch,
                                  cursor=cursor, key=key, batch_size=7)
    assert fast.ok and fast.rows == 60 and adbc_pages == len(parts) == 9
    got = pa.concat_tables(parts)
    assert len(set(got.column(key).to_pylist())) == 60
    assert got.to_pylist() == pa.concat_tables(slow_parts).to_pylist()


def test_adbc_reads_in_utc_like_the_row_path_whatever_the_servers_zone(tmp_path, source_pg, monkeypatch):
    with psycopg.connect(source_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id int PRIMARY KEY, updated timestamptz NOT NULL)")
        conn.execute("INSERT INTO wide VALUES (1, '2025-01-01 20:00+00'), (2, '2025-01-01 23:30+00')")
        conn.execute(f"ALTER DATABASE {source_pg.rsplit('/', 1)[1]} SET TimeZone = 'Asia/Tokyo'")
    query = "SELECT id, updated, updated::text AS shown, updated::date AS day FROM wide"
    fast, parts, adbc_pages = extract(tmp_path / "fast", source_pg, generic=False, monkeypatch=monkeypatch,
                                      table=None, query=query)
    slow, slow_parts, _ = extract(tmp_path / "slow", source_pg, generic=True, monkeypatch=monkeypatch,
                                  table=None, query=query)
    assert fast.ok and adbc_pages == 1
    assert parts[0].column("shown").to_pylist() == ["2025-01-01 20:00:00+00", "2025-01-01 23:30:00+00"]
    assert parts[0].to_pylist() == slow_parts[0].to_pylist()
