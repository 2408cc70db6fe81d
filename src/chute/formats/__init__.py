"""Formats: landing-file bytes -> polars frames, chosen by [source] format.

    reader.py   read_source: the one entry point, dispatching on [source] format
    csv.py      CSV/TSV through pyarrow, in blocks (parallel for big files), gzip
    jsonl.py    JSON lines
    excel.py    workbooks (fastexcel), sheets and ranges
    parquet.py  Parquet by row group
    salvage.py  record-by-record reading when the fast reader refuses a file: bad records
                become parse rejects with their line, the rest load
    text.py     byte counting and row numbering shared by the readers

May import: config, and the loose modules (errors, coltypes). Nothing above.
"""
