"""JSON lines (newline-delimited JSON, as Kinesis Firehose writes it) -> polars frames.

The file is streamed (gzip decompressed on the way, other encodings transcoded to UTF-8)
and cut at newlines into blocks of at most BLOCK bytes; a JSON text cannot hold a raw
newline, so every newline ends a record and no quote counting is needed (unlike CSV).
Each block is parsed by polars' NDJSON reader, which reads a number and a string in one
key as text rather than failing.

Records are objects; each key becomes a column. Nested objects are flattened, joining the
keys with `[source] nested_separator` (`{"customer": {"id": 7}}` -> `customer_id`), which
is how Firehose data is queried in practice; with `[source] nested = "json"` they are kept
as JSON text instead. Arrays are always kept as JSON text (a table column holds one value).

A line that is not a JSON object (bad JSON, an array, bytes that are not text) does not fail
the file when a `rejects` list is given: it becomes a parse reject with its line number and
the other lines load. Declared `[source] columns` types are applied; a value that does not
convert rejects its line the same way. Blank lines are skipped. A file with no records (empty,
or only blank lines) is refused like an empty CSV file.

Every frame carries LINE_COLUMN, the line number of each record: for JSON lines the record's
position in the file is its line (chute.quality.records.numbered uses it as the row number).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import polars as pl
import pyarrow as pa

from chute.errors import ReadError, setting
from chute.config.project import Source
from chute.formats.text import count_byte
from chute.formats.csv import Data, transcoder, open_stream

BLOCK = 4 << 20  # bytes of text per parsed block: bounds memory at a few times this
LINE_COLUMN = "_chute_line"
MASK = "***"


def read_jsonl(data: Data, source: Source, block_bytes: int = 64 << 20,
               rejects: list | None = None) -> Iterator[pl.DataFrame]:
    """Yield frames of the file's records. Bad lines go to `rejects` (ParseReject) when it is
    given, else the first one raises ReadError naming its line."""
    stream = open_stream(data, source)
    records = 0
    first_types: dict[str, pl.DataType] | None = None
    bad = 0
    try:
        for first_line, block in _line_blocks(stream, min(block_bytes, BLOCK), source):
            frame, problems = _parse_block(block, first_line, source)
            if problems:
                if rejects is None:
                    line, reason, _ = problems[0]
                    raise ReadError(f"line {line}: {reason}")
                rejects.extend(_reject(line, reason, raw, source) for line, reason, raw in problems)
                bad += len(problems)
            if frame is None or frame.height == 0:
                continue
            frame = _shaped(frame, source)
            frame = _declared(frame, source, rejects, block, first_line)
            if first_types is None:
                first_types = dict(frame.schema)
            else:
                frame = _like_first(frame, first_types)
            records += frame.height
            if frame.height:
                yield frame
    finally:
        stream.close()
    if records == 0:
        if bad:
            line, reason = rejects[0].line_number, rejects[0].reason  # type: ignore[index]
            raise ReadError(f"no line of the file is a valid record; line {line}: {reason}")
        raise ReadError("the file has no JSON records (it is empty or only blank lines)")


JSON_MAX = 1 << 30  # a JSON document is parsed whole: above this, ask for JSON lines


def read_json(data: Data, source: Source, block_bytes: int = 64 << 20,
              rejects: list | None = None) -> Iterator[pl.DataFrame]:
    """Frames of a JSON document's records: an array of objects, an object holding one array of
    objects (`{"count": 2, "data": [{...}, {...}]}`), or an object of equal-length arrays (one
    per column, `{"a": [1, 2], "b": [3, 4]}`). The document is parsed whole (a document cannot
    be cut at newlines), then read as JSON lines, one record a line: record N is line N.
    Anything else (a scalar, an object with no such array, GeoJSON-like geometry) is refused."""
    stream = open_stream(data, source)
    try:
        raw = stream.read(JSON_MAX + 1)
    finally:
        stream.close()
    if len(raw) > JSON_MAX:
        raise ReadError(f"the JSON document is over {JSON_MAX >> 30} GB, and a document is read whole: "
                        "write it as JSON lines (one object a line), which is read in blocks")
    text = transcoder(source.encoding)(raw, True)
    try:
        doc = json.loads(text)
    except UnicodeDecodeError:
        raise ReadError(f"the file is not valid UTF-8 text; set {setting('encoding')} to its encoding") from None
    except ValueError as exc:
        raise ReadError(f"not valid JSON: {exc}") from None
    records = json_records(doc)
    lines = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
    plain = source.model_copy(update={"compression": "none", "encoding": "utf-8"})
    return read_jsonl(pa.py_buffer(lines), plain, block_bytes, rejects)


def json_records(doc) -> list:
    """The records of a parsed JSON document (see read_json); ReadError saying why not."""
    if isinstance(doc, list):
        if doc and not all(isinstance(r, dict) for r in doc):
            bad = next(r for r in doc if not isinstance(r, dict))
            raise ReadError(f"the JSON array holds a {_kind(bad)}, not only objects: chute reads an array "
                            "of objects, one row each")
        return doc
    if not isinstance(doc, dict):
        raise ReadError(f"the JSON document is a {_kind(doc)}: chute reads an array of objects, an object "
                        "holding one, or JSON lines")
    arrays = {k: v for k, v in doc.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)}
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if len(arrays) > 1:
        shown = ", ".join(f"{k!r} ({len(v)} objects)" for k, v in arrays.items())
        raise ReadError(f"the JSON object holds several arrays of objects: {shown}; chute loads one table "
                        f"from one array: extract it first, e.g. jq -c '.{next(iter(arrays))}[]' FILE > rows.jsonl")
    columns = {k: v for k, v in doc.items() if isinstance(v, list)}
    lengths = {len(v) for v in columns.values()}
    if columns and len(columns) == len(doc) and len(lengths) == 1 and lengths != {0} and not any(
            isinstance(x, (dict, list)) for v in columns.values() for x in v):
        names = list(columns)
        return [dict(zip(names, row)) for row in zip(*columns.values())]
    keys = ", ".join(list(doc)[:8]) + (", ..." if len(doc) > 8 else "")
    raise ReadError(f"the JSON object (keys: {keys}) holds no array of objects to read as rows; chute reads an "
                    "array of objects, an object holding one (e.g. {\"data\": [{...}, ...]}), an object of "
                    "equal-length column arrays, or JSON lines")


def _line_blocks(stream, size: int, source: Source) -> Iterator[tuple[int, bytes]]:
    """(number of the block's first line, UTF-8 text ending at a newline), about `size` bytes each."""
    decode = transcoder(source.encoding)
    carry = b""
    line = 1
    while True:
        chunk = stream.read(size)
        text = decode(chunk, not chunk)
        buf = carry + text if carry else text
        if not chunk:
            if buf:
                yield line, buf if buf.endswith(b"\n") else buf + b"\n"
            return
        end = buf.rfind(b"\n")
        if end < 0:  # one line longer than a block: the block grows to hold it
            carry = buf
            continue
        block, carry = buf[:end + 1], buf[end + 1:]
        yield line, block
        line += count_byte(block, b"\n")


def _record_lines(block: bytes, first_line: int) -> list[int]:
    """Line numbers of the block's non-blank lines (the records polars will read, in order)."""
    return [first_line + i for i, text in enumerate(block.split(b"\n")[:-1]) if text.strip()]


def _parse_block(block: bytes, first_line: int, source: Source
                 ) -> tuple[pl.DataFrame | None, list[tuple[int, str, bytes]]]:
    """The block's records as a frame (with LINE_COLUMN) and its bad lines (line, reason, text)."""
    lines = _record_lines(block, first_line)
    if not lines:
        return None, []
    try:
        frame = pl.read_ndjson(io.BytesIO(block), infer_schema_length=None)
        if frame.height == len(lines):
            return frame.with_columns(pl.Series(LINE_COLUMN, lines, dtype=pl.Int64)), []
    except Exception:  # a bad line, or values of one key too different to share a type: line by line
        pass
    return _parse_lines(block, first_line)


def _parse_lines(block: bytes, first_line: int) -> tuple[pl.DataFrame | None, list[tuple[int, str, bytes]]]:
    good: list[bytes] = []
    numbers: list[int] = []
    problems: list[tuple[int, str, bytes]] = []
    kinds: dict[str, set[str]] = {}
    for i, text in enumerate(block.split(b"\n")[:-1]):
        if not text.strip():
            continue
        line = first_line + i
        try:
            value = json.loads(text)
        except UnicodeDecodeError:
            problems.append((line, f"not valid UTF-8 text (set {setting('encoding')} if the whole file is in "
                                   "another encoding)", text))
            continue
        except ValueError as exc:
            problems.append((line, f"not valid JSON: {exc}", text))
            continue
        if not isinstance(value, dict):
            problems.append((line, f"not a JSON object (a JSON {_kind(value)})", text))
            continue
        for key, v in value.items():
            if v is not None:
                kinds.setdefault(key, set()).add(_kind(v))
        good.append(text)
        numbers.append(line)
    if not good:
        return None, problems
    # A key whose values are of different kinds (a number here, an object there) is read as text.
    mixed = {key: pl.String for key, seen in kinds.items() if len(seen) > 1}
    try:
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(good) + b"\n"), infer_schema_length=None,
                               schema_overrides=mixed or None)
    except Exception as exc:
        raise ReadError(f"lines {numbers[0]}-{numbers[-1]}: cannot read as JSON lines: "
                        f"{str(exc).splitlines()[0][:300]}") from None
    return frame.with_columns(pl.Series(LINE_COLUMN, numbers, dtype=pl.Int64)), problems


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _shaped(frame: pl.DataFrame, source: Source) -> pl.DataFrame:
    """Nested objects flattened (or JSON text), arrays as JSON text."""
    sep = source.nested_separator
    while True:
        structs = [c for c, t in frame.schema.items() if isinstance(t, pl.Struct)]
        if source.nested != "flatten" or not structs:
            break
        frame = frame.with_columns([
            pl.col(c).struct.rename_fields([f"{c}{sep}{f.name}" for f in frame.schema[c].fields]) for c in structs
        ]).unnest(structs)
    nested = [c for c, t in frame.schema.items() if t.is_nested()]
    if nested:
        frame = frame.with_columns([_json_text(c) for c in nested])
    return frame.with_columns([pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Null])


def _json_text(column: str) -> pl.Expr:
    encoded = pl.struct(pl.col(column).alias("v")).struct.json_encode()
    text = encoded.str.strip_prefix('{"v":').str.strip_suffix("}")
    return pl.when(pl.col(column).is_null()).then(None).otherwise(text).alias(column)


def _declared(frame: pl.DataFrame, source: Source, rejects: list | None, block: bytes,
              first_line: int) -> pl.DataFrame:
    """Declared [source] columns cast to their types; a value that does not convert rejects its line."""
    from chute.coltypes import cast_expr

    types = source.column_types()
    if not types:
        return frame
    bad = pl.repeat(False, frame.height, eager=True)
    lines_text: list[bytes] | None = None
    for name, type_ in types.items():
        if name not in frame.columns:
            continue
        before = frame.get_column(name)
        if before.dtype == type_.polars:
            continue
        cast = frame.select(cast_expr(name, before.dtype, type_.polars, source.formats.get(name))
                            .alias(name)).to_series()
        wrong = before.is_not_null() & cast.is_null()
        if wrong.any():
            shown = frame.filter(wrong).select(LINE_COLUMN, pl.col(name).cast(pl.String))
            if rejects is None:
                line, value = shown.row(0)
                raise ReadError(f"line {line}: column {name!r}: {value!r} is not a valid {type_.name}")
            if lines_text is None:
                lines_text = block.split(b"\n")
            for line, value in shown.iter_rows():
                raw = lines_text[line - first_line]
                rejects.append(_reject(line, f"not a valid {type_.name}", raw, source, name,
                                       MASK if name in source.pii_columns else value))
            bad = bad | wrong
        frame = frame.with_columns(cast)
    return frame.filter(~bad) if bad.any() else frame


def _like_first(frame: pl.DataFrame, first: dict[str, pl.DataType]) -> pl.DataFrame:
    """Later blocks take the first block's types where their values convert exactly."""
    out = []
    for name, dtype in frame.schema.items():
        want = first.get(name)
        if want is None or want == dtype:
            continue
        try:
            out.append(frame.get_column(name).cast(want, strict=True))
        except Exception:  # they do not: keep the block's own type (the table's types decide later)
            continue
    return frame.with_columns(out) if out else frame


def _reject(line: int, reason: str, raw: bytes, source: Source, column: str | None = None, value=None):
    from chute.formats.text import ParseReject

    return ParseReject(line, line, reason, _masked(raw, source), column, value)


def _masked(raw: bytes, source: Source) -> str:
    """The line as text; with PII columns, their values masked (the whole line when it is not JSON)."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    if not source.pii_columns:
        return text
    try:
        value = json.loads(raw)
    except ValueError:
        return f"{MASK} (line withheld: it is not valid JSON and the file has PII columns)"
    if not isinstance(value, dict):
        return f"{MASK} (line withheld: it is not a JSON object and the file has PII columns)"
    return json.dumps(_mask(value, set(source.pii_columns), source.nested_separator, ""), ensure_ascii=False)


def _mask(value: dict, pii: set[str], sep: str, prefix: str) -> dict:
    out = {}
    for key, v in value.items():
        name = f"{prefix}{sep}{key}" if prefix else key
        if name in pii:
            out[key] = MASK
        elif isinstance(v, dict):
            out[key] = _mask(v, pii, sep, name)
        else:
            out[key] = v
    return out


def locate_lines(path_or_bytes: str | bytes, source: Source, rows: set[int]) -> dict[int, tuple[int, str]]:
    """Record position (its line number) -> (line, its text with PII masked), for `rows` only."""
    found: dict[int, tuple[int, str]] = {}
    if not rows:
        return found
    data = path_or_bytes if isinstance(path_or_bytes, str) else pa.py_buffer(path_or_bytes)
    stream = open_stream(data, source)
    try:
        for first_line, block in _line_blocks(stream, BLOCK, source):
            for i, text in enumerate(block.split(b"\n")[:-1]):
                if first_line + i in rows:
                    found[first_line + i] = (first_line + i, _masked(text, source))
            if len(found) == len(rows):
                break
    finally:
        stream.close()
    return found
