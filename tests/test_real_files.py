"""Issue 23: files published by others read right (null markers, dates, JSON, compression,
limits, the schema shown, names), each loaded by `chute load` into a real PostgreSQL."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import pytest

from conftest import write


def _rows(n: int) -> str:
    return "id,name,v\n" + "".join(f"{i},name{i},{i * 1.5}\n" for i in range(n))


def _zstd(data: bytes) -> bytes:
    import pyarrow as pa

    return pa.compress(data, "zstd", asbytes=True)  # one zstd frame, as the zstd tool writes


COMPRESSORS = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zstd": _zstd}


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_a_compressed_file_loads(tmp_path, cli, query, db_url, kind):
    path = write(tmp_path / f"rows.csv.{kind}", COMPRESSORS[kind](_rows(5000).encode()))
    assert json.loads(cli("load", path, "--into", "t", "--json").output)["rows_loaded"] == 5000
    assert query("SELECT sum(id) FROM t")[0][0] == sum(range(5000))


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_a_truncated_compressed_file_fails_whole_and_loads_nothing(tmp_path, cli, query, db_url, kind):
    data = COMPRESSORS[kind](_rows(200_000).encode())
    path = write(tmp_path / f"cut.csv.{kind}", data[: len(data) * 2 // 3])
    result = cli("load", path, "--into", "t", expect=2)  # refused before the table is created
    assert f"the {kind} stream is" in result.output and "at byte" in result.output
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'")[0][0] == 0


@pytest.mark.parametrize("kind", ["gzip", "bz2", "zstd"])
def test_a_truncated_file_into_an_existing_table_leaves_it_unchanged(tmp_path, cli, query, db_url, kind):
    """The issue's "a truncated .gz silently loads its first rows": read in small blocks, the
    rows before the cut are copied before it is met; the load's transaction undoes them."""
    cli("load", write(tmp_path / "first.csv", "id,name,v\n-1,x,0.5\n"), "--into", "t")
    data = COMPRESSORS[kind](_rows(300_000).encode())
    path = write(tmp_path / f"cut.csv.{kind}", data[: len(data) * 9 // 10])
    result = cli("load", path, "--into", "t", "--batch-mb", "1", "--json", expect=1)
    failed = json.loads(result.output)["files"][0]
    assert failed["status"] == "failed" and "truncated" in failed["error"] or "corrupt" in failed["error"]
    assert query("SELECT count(*) FROM t")[0][0] == 1
    assert query("SELECT status FROM chute.files WHERE name = %s", (path.name,)) == [("failed",)]


def test_a_corrupt_byte_in_a_gzip_fails_the_file(tmp_path, cli, query, db_url):
    data = bytearray(gzip.compress(_rows(20_000).encode()))
    data[len(data) // 2] ^= 0xFF
    result = cli("load", write(tmp_path / "bad.csv.gz", bytes(data)), "--into", "t", expect=2)
    assert "the gzip stream is corrupt" in result.output


# -- null markers ------------------------------------------------------------------------------

NA_FILE = "dep_time,tailnum,day\n517,N14228,2013-01-01\nNA,NA,NA\n533,\"NA\",2013-01-03\n"


def test_na_in_a_numeric_a_date_and_a_text_column_is_null(tmp_path, cli, query, db_url):
    path = write(tmp_path / "flights.csv", NA_FILE)
    summary = json.loads(cli("load", path, "--into", "f", "--json").output)
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'f'"))
    assert types == {"dep_time": "bigint", "tailnum": "text", "day": "date"}
    # unquoted NA is NULL in every column; the quoted "NA" is the text NA (R quotes text, writes NA bare)
    assert query("SELECT dep_time, tailnum, day::text FROM f ORDER BY dep_time NULLS FIRST") == [
        (None, None, None), (517, "N14228", "2013-01-01"), (533, "NA", "2013-01-03")]
    shown = {c["name"]: c for c in summary["schema"]["columns"]}
    assert shown["dep_time"]["nulls"] == 1 and shown["dep_time"]["markers"] == {"NA": 1}
    assert shown["day"]["nulls"] == 1 and shown["tailnum"]["nulls"] == 1


def test_null_option_replaces_the_markers_and_defaults_can_be_switched_off(tmp_path, cli, query, db_url):
    path = write(tmp_path / "m.csv", "v,w\n1,NA\n-,x\n,nil\n")
    cli("load", path, "--into", "a", "--null", "-", "--null", "nil")
    assert query("SELECT v, w FROM a ORDER BY v NULLS LAST") == [(1, "NA"), (None, "x"), (None, None)]
    cli("load", write(tmp_path / "n.csv", "v,w\n1,NA\n2,\n"), "--into", "b", "--no-default-nulls")
    assert query("SELECT v, w FROM b ORDER BY v") == [(1, "NA"), (2, None)]  # empty is always NULL


def test_null_values_in_a_project_replace_the_defaults(tmp_path, query, db_url):
    from chute.config.project import project_from_dict
    from chute.run.runner import Runner

    write(tmp_path / "landing" / "a.csv", "k,v\nx,NA\ny,none\nz,\n")
    project = project_from_dict({"project": {"name": "p"}, "source": {"null_values": ["none"]},
                                 "tables": {"rows": {"columns": {"k": "text", "v": "text"}}}}, root=tmp_path)
    assert Runner(project, db_url).run().ok
    assert query("SELECT k, v FROM rows ORDER BY k") == [("x", "NA"), ("y", None), ("z", None)]


# -- dates -------------------------------------------------------------------------------------

DATES = ("a,b,c,d,e,f,g\n"
         "2012/01/01,2010/01/01 00:00,Jan 1 2000,13.01.2013,01/13/2013,2020-01-01 10:00:00.5+02:00,10:30\n"
         "2012/01/02,2010/01/01 01:00,Feb 29 2000,02.01.2013,01/02/2013,2020-01-01 10:00:00+02:00,11:45\n")


def test_dates_and_times_detected_from_their_values(tmp_path, cli, query, db_url):
    summary = json.loads(cli("load", write(tmp_path / "d.csv", DATES), "--into", "d", "--json").output)
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'd'"))
    assert types == {"a": "date", "b": "timestamp without time zone", "c": "date", "d": "date", "e": "date",
                     "f": "timestamp with time zone", "g": "time without time zone"}
    rows = query("SELECT a::text, b::text, c::text, d::text, e::text, (f AT TIME ZONE 'UTC')::text, g::text "
                 "FROM d ORDER BY a")
    assert rows[0] == ("2012-01-01", "2010-01-01 00:00:00", "2000-01-01", "2013-01-13", "2013-01-13",
                       "2020-01-01 08:00:00.5", "10:30:00")
    assert rows[1][2:5] == ("2000-02-29", "2013-01-02", "2013-01-02")
    formats = {c["name"]: c["format"] for c in summary["schema"]["columns"]}
    assert formats["d"] == "%d.%m.%Y" and formats["e"] == "%m/%d/%Y"


def test_an_ambiguous_date_column_stays_text_and_the_schema_says_why(tmp_path, cli, query, db_url):
    path = write(tmp_path / "amb.csv", "day,v\n01/02/2013,1\n03/04/2013,2\n")
    result = cli("load", path, "--into", "amb", "--dry-run", "--json")
    day = json.loads(result.output)["schema"]["columns"][0]
    assert day["type"] == "text" and "ambiguous" in day["note"] and "--date-format" in day["note"]
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'amb'")[0][0] == 0
    refused = cli("load", path, "--into", "amb", "--type", "day=date", expect=2)
    assert "--date-format" in refused.output
    cli("load", path, "--into", "amb", "--type", "day=date", "--date-format", "day=%d/%m/%Y")
    assert query("SELECT day::text FROM amb ORDER BY v") == [("2013-02-01",), ("2013-04-03",)]


def test_type_date_on_a_mostly_date_column_quarantines_the_odd_values(tmp_path, cli, query, db_url):
    """Asked for a date, a column of ISO dates with one stray value loads; the stray one is a reject."""
    path = write(tmp_path / "odd.csv", "d,v\n2020-01-01,1\n2020-01-02,2\nnotadate,3\n")
    summary = json.loads(cli("load", path, "--into", "odd", "--type", "d=date", "--json").output)
    assert summary["rows_loaded"] == 2 and summary["rows_rejected"] == 1
    assert query("SELECT d::text FROM odd ORDER BY v") == [("2020-01-01",), ("2020-01-02",)]
    worse = write(tmp_path / "worse.csv", "d\nfoo\nbar\n2020-01-01\n")  # mostly not dates: refused, as before
    assert "--date-format" in cli("load", worse, "--into", "worse", "--type", "d=date", expect=2).output


def test_a_date_that_does_not_fit_the_format_is_quarantined(tmp_path, cli, query, db_url):
    cli("load", write(tmp_path / "first.csv", "day,v\n31/12/2012,0\n"), "--into", "late")
    path = write(tmp_path / "late.csv", "day,v\n01/02/2013,1\n2013-02-30,2\n03/04/2013,3\n")
    summary = json.loads(cli("load", path, "--into", "late", "--date-format", "day=%d/%m/%Y", "--json",
                             expect=None).output)
    assert summary["rows_loaded"] == 2 and summary["rows_rejected"] == 1
    assert query("SELECT reason FROM chute.rejects")[0][0] == "not a valid date of the format '%d/%m/%Y'"
    assert query("SELECT day::text FROM late ORDER BY v") == [("2012-12-31",), ("2013-02-01",), ("2013-04-03",)]


def test_date_format_in_a_project(tmp_path, query, db_url):
    from chute.config.project import project_from_dict
    from chute.run.runner import Runner

    write(tmp_path / "landing" / "a.csv", "k,day\nx,31.12.2020\ny,NA\n")
    project = project_from_dict({"project": {"name": "p"}, "source": {"formats": {"day": "%d.%m.%Y"}},
                                 "tables": {"rows": {"columns": {"k": "text", "day": "date"}}}}, root=tmp_path)
    assert Runner(project, db_url).run().ok
    assert query("SELECT k, day::text FROM rows ORDER BY k") == [("x", "2020-12-31"), ("y", None)]


# -- the schema shown --------------------------------------------------------------------------

def test_every_load_prints_the_schema_and_a_dry_run_loads_nothing(tmp_path, cli, query, db_url):
    path = write(tmp_path / "s.csv", NA_FILE)
    dry = cli("load", path, "--into", "s", "--dry-run")
    assert "dep_time" in dry.output and "bigint" in dry.output and "NA" in dry.output and "nothing loaded" in dry.output
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 's'")[0][0] == 0
    loaded = cli("load", path, "--into", "s")
    assert "bigint" in loaded.output and "null markers" in loaded.output and "succeeded" in loaded.output
    assert query("SELECT count(*) FROM s")[0][0] == 3


# -- the format from the content -------------------------------------------------------------

JSON_SHAPES = {
    "array": '[{"a": 1, "b": "x", "day": "2012/01/31"}, {"a": 2, "b": null, "day": "2012/02/01"}]',
    "object_holding_an_array": '{"count": 2, "object": "list", "data": '
                               '[{"a": 1, "b": "x", "day": "2012/01/31"}, {"a": 2, "day": "2012/02/01"}]}',
    "object_of_arrays": '{"a": [1, 2], "b": ["x", null], "day": ["2012/01/31", "2012/02/01"]}',
    "lines": '{"a": 1, "b": "x", "day": "2012/01/31"}\n{"a": 2, "b": null, "day": "2012/02/01"}\n',
}


@pytest.mark.parametrize("shape", JSON_SHAPES)
def test_json_is_read_by_its_content(tmp_path, cli, query, db_url, shape):
    path = write(tmp_path / "data.txt", JSON_SHAPES[shape])  # no telling extension: the bytes decide
    summary = json.loads(cli("load", path, "--into", "j", "--json").output)
    assert summary["rows_loaded"] == 2
    assert summary["schema"]["format"] == ("jsonl" if shape == "lines" else "json")
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'j'"))
    assert types == {"a": "bigint", "b": "text", "day": "date"}
    assert query("SELECT a, b, day::text FROM j ORDER BY a") == [(1, "x", "2012-01-31"), (2, None, "2012-02-01")]


def test_a_gzipped_json_array_loads(tmp_path, cli, query, db_url):
    path = write(tmp_path / "data.json.gz", gzip.compress(JSON_SHAPES["array"].encode()))
    cli("load", path, "--into", "j")
    assert query("SELECT count(*) FROM j")[0][0] == 2


@pytest.mark.parametrize("text,says", [
    ('{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}', "holds no array of objects"),
    ('{"nodes": [{"id": 1}], "links": [{"source": 1}]}', "several arrays of objects"),
    ('[1, 2, 3]', "not only objects"),
], ids=["geojson_like", "two_arrays", "array_of_numbers"])
def test_json_without_records_is_refused_and_nothing_created(tmp_path, cli, query, db_url, text, says):
    result = cli("load", write(tmp_path / "data.json", text), "--into", "j", expect=2)
    assert says in result.output
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'j'")[0][0] == 0


def test_a_parquet_file_loads_with_its_own_types(tmp_path, cli, query, db_url):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": pa.array([1, 2, 3], pa.int32()), "price": [1.5, None, 3.25],
                      "day": [datetime.date(2024, 1, 1), datetime.date(2024, 1, 2), None], "name": ["a", "NA", None]})
    path = tmp_path / "prices.bin"
    pq.write_table(table, path)
    summary = json.loads(cli("load", path, "--into", "p", "--json").output)
    assert summary["schema"]["format"] == "parquet" and summary["rows_loaded"] == 3
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'p'"))
    assert types == {"id": "bigint", "price": "double precision", "day": "date", "name": "text"}
    # Parquet has its own null: the string "NA" is data there
    assert query("SELECT id, price, day::text, name FROM p ORDER BY id") == [
        (1, 1.5, "2024-01-01", "a"), (2, None, "2024-01-02", "NA"), (3, 3.25, None, None)]


def test_a_zstd_compressed_parquet_file_loads(tmp_path, cli, query, db_url):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(100))}), buffer)
    cli("load", write(tmp_path / "x.parquet.zst", _zstd(buffer.getvalue())), "--into", "z")
    assert query("SELECT count(*), sum(x) FROM z")[0] == (100, sum(range(100)))


def test_an_xlsx_workbook_loads_with_inferred_types(tmp_path, cli, query, db_url):
    import datetime

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Species", "Culmen Length", "Sampled", "Sex"])
    sheet.append(["Adelie", 39.1, datetime.date(2007, 11, 11), "MALE"])
    sheet.append(["Gentoo", "NA", datetime.date(2007, 11, 12), "NA"])
    sheet.append(["Chinstrap", 46.5, datetime.date(2007, 11, 13), "FEMALE"])
    path = tmp_path / "penguins.xlsx"
    book.save(path)
    summary = json.loads(cli("load", path, "--into", "x", "--json").output)
    assert summary["schema"]["format"] == "excel" and summary["rows_loaded"] == 3
    types = {c["name"]: c["type"] for c in summary["schema"]["columns"]}
    assert types["culmen_length"] == "double" and types["species"] == "text"
    assert types["sampled"] in ("date", "timestamp")
    assert query('SELECT species, culmen_length, sex FROM x ORDER BY 1') == [
        ("Adelie", 39.1, "MALE"), ("Chinstrap", 46.5, "FEMALE"), ("Gentoo", None, None)]


def test_a_zip_archive_is_refused_naming_its_member(tmp_path, cli, query, db_url):
    import zipfile

    path = tmp_path / "flights.csv.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("flights.csv", _rows(10))
    result = cli("load", path, "--into", "z", expect=2)
    assert "ZIP archive" in result.output and "flights.csv" in result.output


# -- limits refused before anything is written -------------------------------------------------

def test_two_thousand_columns_are_refused_with_nothing_created(tmp_path, cli, query, db_url):
    header = ",".join(f"c{i}" for i in range(2000))
    path = write(tmp_path / "wide.csv", header + "\n" + ",".join(str(i) for i in range(2000)) + "\n")
    result = cli("load", path, "--into", "wide", expect=2)
    assert "2,000 columns" in result.output and "1,600" in result.output and "--columns" in result.output
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'wide'")[0][0] == 0
    ledger = query("SELECT to_regclass('chute.files') IS NOT NULL")[0][0]
    assert not ledger or query("SELECT count(*) FROM chute.files")[0][0] == 0  # not even recorded
    cli("load", path, "--into", "wide", "--columns", "c0,c1999")  # the option the message offers
    assert query("SELECT c0, c1999 FROM wide") == [(0, 1999)]
    assert query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'wide'")[0][0] == 2


def test_a_name_over_63_bytes_is_refused(tmp_path, cli, query, db_url):
    long = "x" * 70
    result = cli("load", write(tmp_path / "l.csv", f"id,{long}\n1,2\n"), "--into", "l", expect=2)
    assert "63 bytes" in result.output and "nothing was loaded" in result.output
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'l'")[0][0] == 0


# -- the dialect -------------------------------------------------------------------------------

def test_a_given_delimiter_that_splits_nothing_is_refused(tmp_path, cli, query, db_url):
    path = write(tmp_path / "airlines.csv", "carrier,name\n9E,Endeavor Air Inc.\nAA,American Airlines Inc.\n")
    result = cli("load", path, "--into", "a", "--delimiter", ";", expect=2)
    assert "delimiter ';' splits no line" in result.output and "--delimiter ," in result.output
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'a'")[0][0] == 0


def test_a_wrong_delimiter_in_a_project_fails_the_file(tmp_path, query, db_url):
    from chute.config.project import project_from_dict
    from chute.run.runner import Runner

    write(tmp_path / "landing" / "a.csv", "carrier,name\n9E,Endeavor Air Inc.\nAA,American Airlines Inc.\n")
    project = project_from_dict({"project": {"name": "p"}, "source": {"delimiter": ";"},
                                 "tables": {"rows": {"columns": {"carrier": "text", "name": "text"}}}}, root=tmp_path)
    summary = Runner(project, db_url).run()
    assert not summary.ok and "[source] delimiter = ','" in summary.files[0].error


@pytest.mark.parametrize("text,delimiter,header", [
    ("a;b;c\n1;2,5;x\n3;4,5;y\n", ";", True),
    ("name\tcity\nAnn\tOslo\nBob\tRome\n", "\t", True),
    ("1|2|x\n3|4|y\n", "|", False),
], ids=["semicolon", "tab", "pipe_no_header"])
def test_the_dialect_is_sniffed_and_shown(tmp_path, cli, query, db_url, text, delimiter, header):
    path = write(tmp_path / "d.csv", text)
    summary = json.loads(cli("load", path, "--into", "d", "--json").output)
    dialect = summary["schema"]["dialect"]
    assert dialect["delimiter"] == delimiter and dialect["header"] is header and dialect["encoding"] == "utf-8"
    assert dialect["given"] == [] and summary["rows_loaded"] == 2
    shown = cli("load", path, "--into", "d2", "--dry-run").output
    assert "read as csv" in shown and "sniffed" in shown


def test_a_cp1252_file_and_a_bom_are_sniffed(tmp_path, cli, query, db_url):
    cli("load", write(tmp_path / "w.csv", "name,v\nMüller,1\nCafé,2\n".encode("cp1252")), "--into", "w")
    assert query("SELECT name FROM w ORDER BY v") == [("Müller",), ("Café",)]
    summary = json.loads(cli("load", write(tmp_path / "b.csv", "\ufeffid,v\n1,2\n".encode()), "--into", "b",
                             "--json").output)
    assert summary["schema"]["dialect"]["encoding"] == "utf-8-sig"
    assert query("SELECT id FROM b") == [(1,)]  # the BOM is not part of the first name


# -- names -------------------------------------------------------------------------------------

PENGUINS = ('studyName,"Culmen Length (mm)",Delta 15 N (o/oo),Date Egg,Sex\n'
            "PAL0708,39.1,NA,11/11/07,MALE\nPAL0708,NA,8.94956,11/16/07,NA\n")


def test_names_are_normalised_and_the_original_kept_as_a_comment(tmp_path, cli, query, db_url):
    path = write(tmp_path / "penguins_raw.csv", PENGUINS)
    summary = json.loads(cli("load", path, "--into", "p", "--json").output)
    shown = {c["name"]: c["original"] for c in summary["schema"]["columns"]}
    assert shown == {"study_name": "studyName", "culmen_length_mm": "Culmen Length (mm)",
                     "delta_15_n_o_oo": "Delta 15 N (o/oo)", "date_egg": "Date Egg", "sex": "Sex"}
    assert query("SELECT culmen_length_mm, delta_15_n_o_oo, sex FROM p ORDER BY 1 NULLS LAST") == [
        (39.1, None, "MALE"), (None, 8.94956, None)]
    comments = dict(query("SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                          "WHERE a.attrelid = 'p'::regclass AND a.attnum > 0"))
    assert comments["culmen_length_mm"] == "Culmen Length (mm)" and comments["sex"] == "Sex"
    # a second file into the table: its names normalised the same way
    again = write(tmp_path / "more.csv", PENGUINS.replace("39.1", "40.2"))
    assert json.loads(cli("load", again, "--into", "p", "--json").output)["rows_loaded"] == 2


def test_options_take_either_name_and_keep_loads_names_as_they_are(tmp_path, cli, query, db_url):
    path = write(tmp_path / "penguins_raw.csv", PENGUINS)
    cli("load", path, "--into", "t", "--type", "culmen_length_mm=numeric(5,1)", "--columns", "studyName,culmen_length_mm",
        "--primary-key", "study_name")
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"))
    assert types == {"study_name": "text", "culmen_length_mm": "numeric"}
    cli("load", path, "--into", "k", "--names", "keep")
    assert query('SELECT "Culmen Length (mm)" FROM k WHERE "Sex" = \'MALE\'') == [(39.1,)]


def test_names_that_collide_after_normalising_are_refused(tmp_path, cli, query, db_url):
    path = write(tmp_path / "c.csv", "Name,name\nx,y\n")
    result = cli("load", path, "--into", "c", expect=2)
    assert "would both be named 'name'" in result.output and "--names keep" in result.output
    assert query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'c'")[0][0] == 0
    cli("load", path, "--into", "c", "--names", "keep")
    assert query('SELECT "Name", name FROM c') == [("x", "y")]


def test_snake_case():
    from chute.formats.names import normalize_names

    assert normalize_names(["Culmen Length (mm)", "dateRep", "Année", "% change", "2nd", "", "Größe", "a#b"]) == [
        "culmen_length_mm", "date_rep", "annee", "pct_change", "c_2nd", "col_6", "grosse", "a_num_b"]


def test_a_header_with_an_empty_name_loads(tmp_path, cli, query, db_url):
    """R's write.csv names its row-number column "" (bokeh's auto-mpg2.csv): its values are
    numbers, which the text reading of the inference took for markers to look up (a crash)."""
    path = write(tmp_path / "r.csv", '"","model","displ"\n"1","a4",1.8\n"2","a4",2\n')
    summary = json.loads(cli("load", path, "--into", "t", "--json").output)
    assert summary["rows_loaded"] == 2
    assert [c["type"] for c in summary["schema"]["columns"]] == ["bigint", "text", "double"]


def test_a_gzipped_one_line_json_document_is_json(tmp_path, cli, query, db_url):
    """bokeh's us_cities.json.gz: one line of JSON (an object of columns), over 64 KB gzipped.
    The head cut from it raised on its first 1 MB read, so the format was judged on nothing (CSV)."""
    import random

    rng = random.Random(1)
    doc = {"lat": [round(rng.uniform(-90, 90), 4) for _ in range(40_000)],
           "lon": [round(rng.uniform(-180, 180), 4) for _ in range(40_000)]}
    path = write(tmp_path / "cities.json.gz", gzip.compress(json.dumps(doc).encode()))
    assert path.stat().st_size > 1 << 16
    summary = json.loads(cli("load", path, "--into", "t", "--json").output)
    assert summary["schema"]["format"] == "json" and summary["rows_loaded"] == 40_000


def test_type_boolean_reads_yes_and_no_and_quarantines_the_rest(tmp_path, cli, query, db_url):
    path = write(tmp_path / "flags.csv", "flag,n\nYes,1\nNo,2\ny,3\nmaybe,4\n")
    summary = json.loads(cli("load", path, "--into", "flags", "--type", "flag=boolean", "--json").output)
    assert summary["rows_loaded"] == 3 and summary["rows_rejected"] == 1
    assert query("SELECT flag FROM flags ORDER BY n") == [(True,), (False,), (True,)]


@pytest.mark.parametrize("cell", ["007", '"007"', "-01.5", "+0012"])
def test_numbers_with_a_leading_zero_stay_text_in_a_column_with_no_null(cell):
    """The second, all-text reading of the head is skipped when no column holds a NULL and no
    field starts with a 0 followed by a digit; a leading zero, quoted or signed, still brings it."""
    import pyarrow as pa

    from chute.config.project import Source
    from chute.formats.infer import infer_schema

    head = pa.py_buffer(f"id,code,v\n1,{cell},0.5\n2,12,10.05\n".encode())
    schema, _ = infer_schema(head, Source(format="csv"), {}, {}, True)
    assert [(c.name, c.type) for c in schema.columns] == [("id", "bigint"), ("code", "text"), ("v", "double")]
    assert schema.columns[1].note.startswith("leading zeros")
    plain, _ = infer_schema(pa.py_buffer(b"id,code,v\n1,7,0.5\n2,12,10.05\n"), Source(format="csv"), {}, {}, True)
    assert [c.type for c in plain.columns] == ["bigint", "bigint", "double"]
