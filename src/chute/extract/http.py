"""The `http` extraction kind: a paginated JSON API into part files of the landing zone.

    [extract.salespersons]
    kind = "http"
    url = "http://127.0.0.1:8780/branches/{branch_id}/salespersons"
    records = "data"
    pagination = {style = "cursor", cursor_param = "cursor", cursor_path = "next_cursor"}
    for_each = "message"          # one request sequence per key of the chain message

Records of every page are gathered into parts of `batch_size` records (jsonl by default).
With for_each, each row's values fill the URL's {placeholders} and are copied into its
records (add_keys), so a salesperson record knows its branch even when the API omits it.
Incremental: the watermark (or --since) is sent as `cursor_param`, and the greatest
`cursor_field` seen becomes the next watermark, kept in chute.watermarks; with for_each, one
watermark per row (`salespersons|branch_id=B01`), so each key resumes where it ended.
"""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from chute.errors import ConfigError, DatabaseError
from chute.retry import RetryPolicy
from chute.config.extract import HttpExtract
from chute.extract.http_client import HttpError, HttpFetcher, HttpOptions, Pagination


def options_of(spec: HttpExtract) -> HttpOptions:
    p = spec.pagination
    return HttpOptions(
        pagination=Pagination(p.style, p.cursor_param, p.cursor_path, p.page_param, p.start_page, p.page_size_param,
                              p.page_size),
        records=spec.records, headers=dict(spec.headers), headers_env=dict(spec.headers_env),
        rate_limit=spec.rate_limit, timeout=spec.timeout,
        retry=RetryPolicy(spec.attempts, spec.retry_initial, spec.retry_max, min(spec.retry_initial, 1.0)),
        max_retry_after=spec.max_retry_after)


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def fill(text: str, row: dict[str, Any], *, for_url: bool, params: dict[str, Any] | None = None) -> str:
    """{name} from the for_each row (URL-quoted in a URL), else from the project's [params] (as is)."""
    params = params or {}
    missing = placeholders(text) - set(row) - set(params)
    if missing:
        raise ConfigError(f"{text!r} needs {', '.join(sorted(missing))}, which neither the for_each row nor "
                          f"[params] has (the row has: {', '.join(sorted(row)) or 'nothing'})")
    values = {k: str(v) for k, v in params.items()}
    values.update({k: quote(str(v), safe="") if for_url else str(v) for k, v in row.items()})
    return text.format_map(values)


def project_params(project) -> dict[str, Any]:
    return {k: v for k, v in project.params.items() if isinstance(v, (str, int, float))}


def rows_of(job) -> list[dict[str, Any]]:
    """The for_each rows: the message's keys, a query's rows, or one empty row."""
    spec: HttpExtract = job.spec
    if spec.for_each == "message":
        if job.keys is None:
            raise ConfigError(f"extraction {job.name!r} has for_each = 'message': it runs for the keys of a chain "
                              "message (`chute run` of a project with [follow]), not on its own")
        return list(job.keys)
    if spec.for_each_query:
        from chute.db.postgres import connect

        try:
            with connect(job.warehouse_url) as conn, conn.cursor() as cur:
                cur.execute(spec.for_each_query)
                names = [d.name for d in cur.description or []]
                return [dict(zip(names, r)) for r in cur.fetchall()]
        except DatabaseError:
            raise
        except Exception as exc:
            raise ConfigError(f"extraction {job.name!r}: for_each_query failed: {exc}") from None
    unfilled = placeholders(spec.url) - set(project_params(job.project))
    if unfilled:
        raise ConfigError(f"extraction {job.name!r}: the url's {', '.join(sorted(unfilled))} is not in [params] "
                          "and no for_each fills it")
    return [{}]


def _greater(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    try:
        return b if b > a else a
    except TypeError:  # mixed types: compare as text
        return b if str(b) > str(a) else a


def extract(job) -> Any:
    spec: HttpExtract = job.spec
    best = job.watermark
    buffer: list[dict] = []

    def flush(count: int) -> None:
        part, buffer[:] = buffer[:count], buffer[count:]
        try:
            table = pa.Table.from_pylist(part)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise HttpError(f"extraction {job.name!r}: the records do not fit one table ({exc})") from None
        job.writer.write(table)

    known = project_params(job.project)
    with HttpFetcher(options_of(spec)) as fetcher:
        for row in rows_of(job):
            # Each for_each row has its own watermark: a key fetched after another never skips
            # its records older than the other key's latest (job.watermark_of, watermarks.key_name).
            mark = job.watermark_of(row)
            since = job.since if job.since is not None else (mark if mark is not None else spec.start)
            best_of_row = mark
            url = fill(spec.url, row, for_url=True, params=known)
            params = {k: fill(v, row, for_url=False, params=known) if isinstance(v, str) else v
                      for k, v in spec.params.items()}
            if spec.cursor_param and since is not None:
                params[spec.cursor_param] = since
            if spec.until_param and job.until is not None:
                params[spec.until_param] = job.until
            for page in fetcher.pages(url, params):
                for record in page:
                    if spec.add_keys:
                        for k, v in row.items():
                            record.setdefault(k, v)
                    if spec.cursor_field:
                        best_of_row = _greater(best_of_row, record.get(spec.cursor_field))
                buffer.extend(page)
                while len(buffer) >= spec.batch_size:
                    flush(spec.batch_size)
            if spec.cursor_field and row:
                if best_of_row is not None and best_of_row != mark:
                    job.advance(row, best_of_row)
            elif spec.cursor_field:
                best = best_of_row
    if buffer:
        flush(len(buffer))
    # A fan-out's watermarks are its keys' (job.moved); its own stays unused.
    fans_out = bool(spec.for_each or spec.for_each_query)
    return best if spec.cursor_field and not fans_out else None
