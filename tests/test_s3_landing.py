"""An S3 landing zone (moto's server): the same exactly-once loads as a folder, objects
streamed, batch markers, and the run log in the bucket."""

from __future__ import annotations

import json

import pytest

from conftest import STOCK_FILES, TOP_FILES, write
from fixtures_aws import upload_folder, use_landing

TABLE = "historical_stocks_data"


@pytest.fixture
def s3_stocks(stocks, aws, s3_bucket):
    """The stocks project with its landing files in s3://<bucket>/incoming/ instead of landing/."""
    upload_folder(aws.client("s3"), stocks / "landing", s3_bucket, "incoming")
    use_landing(stocks, f"s3://{s3_bucket}/incoming")
    return stocks


def rows_of(folder) -> int:
    top = {p.strip().strip("'\"").split(".us.")[0]
           for p in (folder / "reference" / "top_companies.txt").read_text().split(",") if p.strip()}
    return sum(len(p.read_text().splitlines()) - 1 for p in (folder / "landing").iterdir()
               if p.name.split(".us.")[0] in top)


def test_run_loads_s3_objects_exactly_once(s3_stocks, s3_bucket, cli, query):
    summary = json.loads(cli("run", "-p", s3_stocks, "--json").output)
    assert summary["status"] == "succeeded"
    assert summary["files_loaded"] == TOP_FILES
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == rows_of(s3_stocks) == summary["rows_loaded"]
    names = query("SELECT name, uri FROM chute.files")
    assert all("/" not in n and uri == f"s3://{s3_bucket}/incoming/{n}" for n, uri in names)

    again = json.loads(cli("run", "-p", s3_stocks, "--json").output)
    assert again["files_loaded"] == 0 and again["unchanged"] == TOP_FILES
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == rows_of(s3_stocks)


def test_reuploaded_identical_object_is_not_loaded_again(s3_stocks, s3_bucket, aws, cli, query):
    cli("run", "-p", s3_stocks)
    before = query(f"SELECT count(*) FROM {TABLE}")[0][0]
    name = query("SELECT name FROM chute.files ORDER BY name LIMIT 1")[0][0]
    aws.client("s3").put_object(Bucket=s3_bucket, Key=f"incoming/{name}",
                                Body=(s3_stocks / "landing" / name).read_bytes())
    summary = json.loads(cli("run", "-p", s3_stocks, "--json").output)
    assert summary["files_loaded"] == 0
    assert query(f"SELECT count(*) FROM {TABLE}")[0][0] == before
    assert query("SELECT count(*) FROM chute.files WHERE status = 'loaded'")[0][0] == TOP_FILES


def test_changed_object_is_loaded_again(s3_stocks, s3_bucket, aws, cli, query):
    cli("run", "-p", s3_stocks)
    name = query("SELECT name FROM chute.files ORDER BY name LIMIT 1")[0][0]
    text = (s3_stocks / "landing" / name).read_text()
    header, first, *_ = text.splitlines()
    changed = f"{header}\n{first.replace(first.split(',')[0], '2099-01-02', 1)}\n"
    aws.client("s3").put_object(Bucket=s3_bucket, Key=f"incoming/{name}", Body=changed.encode())
    summary = json.loads(cli("run", "-p", s3_stocks, "--json").output)
    assert summary["files_loaded"] == 1
    assert query(f"SELECT count(*) FROM {TABLE} WHERE stock_date = '2099-01-02'")[0][0] == 1


PLAIN = """
[project]
name = "plain"

[landing]
path = "s3://{bucket}/in"

[source]
batch_mb = 0.05

[source.columns]
id = "bigint"
value = "double"

[tables.rows.columns]
id = "bigint"
value = "double"
"""


def test_big_object_is_streamed_not_read_whole(tmp_path, aws, s3_bucket, cli, query, monkeypatch):
    from chute.sources.s3 import S3Zone

    def refuse(self, entry):
        raise AssertionError(f"{entry.name} was read whole into memory")

    write(tmp_path / "plain" / "chute.toml", PLAIN.format(bucket=s3_bucket))
    body = "id,value\n" + "".join(f"{i},{i * 0.5}\n" for i in range(20_000))  # ~300 KB > batch_mb
    aws.client("s3").put_object(Bucket=s3_bucket, Key="in/big.csv", Body=body.encode())
    monkeypatch.setattr(S3Zone, "read", refuse)
    summary = json.loads(cli("run", "-p", tmp_path / "plain", "--json").output)
    assert summary["status"] == "succeeded", summary
    assert query("SELECT count(*), sum(id) FROM rows")[0] == (20_000, sum(range(20_000)))


def test_gzip_object_is_streamed(tmp_path, aws, s3_bucket, cli, query):
    import gzip

    body = "id,value\n" + "".join(f"{i},{i}\n" for i in range(30_000))
    aws.client("s3").put_object(Bucket=s3_bucket, Key="in/big.csv.gz", Body=gzip.compress(body.encode()))
    write(tmp_path / "plain" / "chute.toml",
          PLAIN.format(bucket=s3_bucket).replace("[source]\n", '[source]\ncompression = "gzip"\n')
          .replace('path = "s3://', 'patterns = ["*.gz"]\npath = "s3://'))
    summary = json.loads(cli("run", "-p", tmp_path / "plain", "--json").output)
    assert summary["status"] == "succeeded", summary
    assert query("SELECT count(*) FROM rows")[0][0] == 30_000


def test_marker_mode_takes_a_batch_only_after_its_marker(tmp_path, aws, s3_bucket, cli, query):
    write(tmp_path / "plain" / "chute.toml",
          PLAIN.format(bucket=s3_bucket).replace('path = "s3://', 'trigger = "marker"\npath = "s3://'))
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="in/batch-1/a.csv", Body=b"id,value\n1,1\n2,2\n")
    s3.put_object(Bucket=s3_bucket, Key="in/batch-1/b.csv", Body=b"id,value\n3,3\n")
    s3.put_object(Bucket=s3_bucket, Key="in/batch-2/c.csv", Body=b"id,value\n4,4\n")
    first = json.loads(cli("run", "-p", tmp_path / "plain", "--json").output)
    assert first["files_loaded"] == 0 and query("SELECT count(*) FROM rows")[0][0] == 0

    s3.put_object(Bucket=s3_bucket, Key="in/batch-1/.SUCCESS", Body=b"")
    second = json.loads(cli("run", "-p", tmp_path / "plain", "--json").output)
    assert second["files_loaded"] == 2
    assert sorted(r[0] for r in query("SELECT id FROM rows")) == [1, 2, 3]


def test_run_log_written_in_the_project_and_the_bucket(s3_stocks, s3_bucket, aws, cli, db_url):
    summary = json.loads(cli("run", "-p", s3_stocks, "--json").output)
    run_id = summary["run_id"]
    local = json.loads((s3_stocks / "logs" / f"run-{run_id}.json").read_text())
    assert local["run_id"] == run_id and local["files_loaded"] == TOP_FILES
    assert local["landing"] == f"s3://{s3_bucket}/incoming" and "timings" in local and local["ended_at"]
    remote = aws.client("s3").get_object(Bucket=s3_bucket, Key=f"logs/run-{run_id}.json")["Body"].read()
    assert json.loads(remote) == local
    assert summary["log"] == f"s3://{s3_bucket}/logs/run-{run_id}.json"
    # the bucket's logs never count as landing files
    assert json.loads(cli("run", "-p", s3_stocks, "--json").output)["files_loaded"] == 0


def test_missing_bucket_is_a_clear_error(stocks, aws, cli, db_url):
    use_landing(stocks, "s3://no-such-bucket/x")
    result = cli("run", "-p", stocks, "--json", expect=None)
    assert result.exit_code != 0
    assert "NoSuchBucket" in result.output and "Traceback" not in result.output
