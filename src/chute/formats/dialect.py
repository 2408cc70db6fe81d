"""A CSV file's dialect sniffed from its first bytes: delimiter, quote, header and encoding.

Modelled on DuckDB's sniffer and csv.Sniffer, with the choices of docs/reading-files.md:

- delimiter: among `, ; TAB |`, the one that splits the most records (of up to 100, quotes
  respected, the last possibly cut one left out) into the same number (> 1) of fields; ties go
  in that order. A file no candidate splits is one column.
- quote: `"` unless `'` clearly opens the fields.
- header: yes when some column is typed below (number, boolean, date) but its first-row value
  is not; no when the first row has the body's types or repeats a value of its column; a file
  of text columns is taken to have one (as DuckDB does).
- encoding: a byte-order mark says utf-8-sig or utf-16; valid UTF-8 is utf-8; else cp1252
  (Excel on Windows), which the schema shown says.

A given delimiter that leaves every record one field while another splits them consistently
is refused (check_delimiter): a one-column table named "carrier,name" is never what was meant.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import asdict, dataclass

import polars as pl

from chute.errors import ReadError, setting

DELIMITERS = (",", ";", "\t", "|")
_INT = re.compile(r"[+-]?\d+$")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|Inf|INF|infinity|Infinity)$")
_BOOL = {"true", "True", "TRUE", "false", "False", "FALSE"}


@dataclass
class Dialect:
    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    encoding: str = "utf-8"
    columns: int = 1  # fields per record with this delimiter
    header_reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def detect_encoding(head: bytes, whole: bool = False) -> str:
    """The encoding of a file starting with `head` (`whole`: the head is the whole file)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if not whole and exc.start >= len(head) - 3:  # a character cut by the sample's end
            return "utf-8"
        return "cp1252"  # the usual non-UTF-8 CSV (Excel on Windows)


def _field_counts(text: str, delimiter: str, quote: str, lines: int = 100) -> list[int]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote)
    counts = []
    try:
        for row in reader:
            if row:
                counts.append(len(row))
            if len(counts) > lines:
                break
    except csv.Error:
        pass
    return counts[:-1] if len(counts) > 2 else counts  # the last record of a cut sample may be partial


def _score(counts: list[int]) -> tuple[float, int]:
    """(share of records with the most common field count, that count); one field scores 0."""
    if not counts:
        return 0.0, 0
    width, n = Counter(counts).most_common(1)[0]
    return (n / len(counts) if width > 1 else 0.0), width


def _text(head: bytes, encoding: str) -> str:
    return head[:1 << 16].decode(encoding, errors="replace").lstrip("\ufeff")


def _quote(text: str) -> str:
    return "'" if text.count("'") > 2 * text.count('"') and re.search(r"(^|[,;\t|])'", text, re.M) else '"'


def best_delimiter(text: str, quote: str) -> tuple[str, float, int]:
    """(delimiter, share of records it splits consistently, into how many fields)."""
    scores = {d: _score(_field_counts(text, d, quote)) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (scores[d][0], -DELIMITERS.index(d)))
    return best, *scores[best]


def check_delimiter(head: bytes, delimiter: str, quote: str, encoding: str) -> None:
    """ReadError when `delimiter` splits no record into fields while another splits (nearly)
    all of them into the same number: the advice names it."""
    text = _text(head, encoding)
    _, width = _score(_field_counts(text, delimiter, quote))
    if width > 1 or not text.strip():
        return
    best, share, columns = best_delimiter(text, quote)
    if best != delimiter and share >= 0.9 and columns > 1:
        raise ReadError(f"delimiter {delimiter!r} splits no line of the file into columns, while {best!r} splits "
                        f"{share:.0%} of them into {columns} columns; set {setting('delimiter', best)}")


def sniff_dialect(head: bytes, delimiter: str | None = None, quote: str | None = None,
                  encoding: str | None = None, header: bool | None = None, whole: bool = False) -> Dialect:
    """The dialect of a CSV file from its first bytes (`whole`: all of it); what is given is
    kept (a given delimiter checked with check_delimiter)."""
    encoding = encoding or detect_encoding(head, whole)
    text = _text(head, encoding)
    quote = quote or _quote(text)
    if delimiter is None:
        delimiter, share, width = best_delimiter(text, quote)
        if share == 0:
            delimiter, width = ",", 1  # one column: any delimiter reads it the same
    else:
        check_delimiter(head, delimiter, quote, encoding)
        width = _score(_field_counts(text, delimiter, quote))[1]
    reason = "given"
    if header is None:
        header, reason = has_header(text, delimiter, quote)
    return Dialect(delimiter, quote, header, encoding, max(width, 1), reason)


def _kind(values: list[str]) -> str:
    if not values:
        return "null"
    if all(_INT.match(v) for v in values):
        if any(len(v.lstrip("+-")) > 1 and v.lstrip("+-").startswith("0") for v in values):
            return "text"  # leading zeros: codes
        return "number"
    if all(_FLOAT.match(v) for v in values):
        return "number"
    if all(v in _BOOL for v in values):
        return "boolean"
    from chute.formats.dates import detect_temporal

    return "date" if detect_temporal(pl.Series(values, dtype=pl.String)).kind else "text"


def has_header(text: str, delimiter: str, quote: str, nulls=("", "NA", "N/A", "NULL", "null", "NaN")
               ) -> tuple[bool, str]:
    """Whether the first record names the columns, and why (see the module's docstring)."""
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote) if r][:51]
    except csv.Error:
        return True, "taken as a header (the sample does not parse as CSV)"
    if len(rows) < 2:
        return True, "one line: taken as a header"
    first, body = rows[0], rows[1:-1] if len(rows) > 2 else rows[1:]
    typed = 0
    for i, value in enumerate(first):
        column = [r[i] for r in body if i < len(r) and r[i] not in nulls]
        kind = _kind(column)
        if kind in ("number", "boolean", "date"):
            if value not in nulls and _kind([value]) != kind:
                return True, f"column {i + 1}: {value[:40]!r} above {kind} values"
            typed += 1
    if typed:
        return False, "the first row has the types of the rows below"
    if len(set(first)) < len(first):
        return False, "the first row repeats a value: not names"
    if any(v in {r[i] for r in body if i < len(r)} for i, v in enumerate(first)):
        return False, "a first-row value repeats below in its column"
    return True, "every column is text: the first row taken as a header"
