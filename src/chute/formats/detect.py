"""A file's format from its content: magic bytes first, then the first non-space character,
the extension only where the bytes cannot tell (.tsv, an empty JSON lines file).

    PAR1                       parquet
    PK\\3\\4 with xl/ members     excel (.xlsx, .xlsm); another zip is refused, naming its member
    D0 CF 11 E0                excel (legacy .xls)
    [                          json (an array of objects)
    { ... } then { on a line   jsonl (JSON lines)
    { ...                      json (an object holding an array of objects, or of columns)
    anything else              csv

Compressed files (gzip, bz2, xz, zstd) are judged by their decompressed head.
"""

from __future__ import annotations

import json

from chute.errors import ReadError
from chute.formats.compress import decompress_head, detect_compression

FORMATS = ("csv", "json", "jsonl", "parquet", "excel")


def detect_format(head: bytes, name: str = "") -> str:
    """'csv', 'json', 'jsonl', 'parquet' or 'excel' for a file starting with `head`
    (compressed or not); ReadError for a zip archive or another binary chute cannot read."""
    if detect_compression(head[:6]):
        head = decompress_head(head, 1 << 20)
    lower = name.lower()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "excel"
    if head.startswith(b"PK\x03\x04"):
        if b"xl/" in head[:65536] or b"[Content_Types].xml" in head[:65536] or lower.endswith((".xlsx", ".xlsm")):
            return "excel"
        member = head[30:30 + int.from_bytes(head[26:28], "little")].decode("utf-8", "replace")
        raise ReadError(f"this is a ZIP archive (its first member is {member!r}), not a data file: unzip it "
                        f"and load {member!r}")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first, _, rest = text.partition(b"\n")
        try:
            whole_line = isinstance(json.loads(first), dict)
        except ValueError:
            whole_line = False
        if whole_line and (rest.lstrip().startswith(b"{") or lower.endswith((".jsonl", ".ndjson"))):
            return "jsonl"
        return "json"
    return "csv"
