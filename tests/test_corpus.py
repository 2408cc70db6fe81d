"""Issue 23: files published in PyPI packages (palmerpenguins, vega_datasets), loaded by
`chute load` into a real PostgreSQL and compared with pandas' defaults: the same rows, the
same NULLs in every column. `make test` installs the packages (pyproject's `test` extra);
without them these tests skip, saying so."""

from __future__ import annotations

import importlib.resources
import json

import pytest

pd = pytest.importorskip("pandas", reason="the corpus comparison needs pandas (pip install -e '.[test]')")

CORPUS = [
    ("palmerpenguins", "data/penguins.csv"),  # R's NA in numbers and text
    ("palmerpenguins", "data/penguins-raw.csv"),  # "Culmen Length (mm)", NA in dates, 11/11/07
    ("vega_datasets", "_data/stocks.csv"),  # Jan 1 2000
    ("vega_datasets", "_data/seattle-weather.csv"),  # 2012/01/01
    ("vega_datasets", "_data/seattle-temps.csv"),  # 2010/01/01 00:00
    ("vega_datasets", "_data/airports.csv"),  # NA among state codes
    ("vega_datasets", "_data/iowa-electricity.csv"),
    ("vega_datasets", "_data/cars.json"),  # a JSON array, nulls
    ("vega_datasets", "_data/barley.json"),
]


def _file(package: str, path: str):
    pytest.importorskip(package, reason=f"{package} is not installed (pip install -e '.[test]')")
    return importlib.resources.files(package).joinpath(path)


@pytest.mark.parametrize("package,path", CORPUS, ids=[p.rsplit("/", 1)[1] for _, p in CORPUS])
def test_rows_and_nulls_agree_with_pandas(tmp_path, cli, query, db_url, package, path):
    resource = _file(package, path)
    with importlib.resources.as_file(resource) as file:
        reference = pd.read_json(file) if path.endswith(".json") else pd.read_csv(file)
        summary = json.loads(cli("load", file, "--into", "t", "--names", "keep", "--json").output)
    assert summary["rows_loaded"] == len(reference) and summary["rows_rejected"] == 0
    columns = [c["name"] for c in summary["schema"]["columns"]]
    assert columns == list(reference.columns)
    counts = ", ".join(f'count("{c}")' for c in columns)
    ours = dict(zip(columns, (len(reference) - n for n in query(f"SELECT {counts} FROM t")[0])))
    assert ours == {c: int(reference[c].isna().sum()) for c in columns}
