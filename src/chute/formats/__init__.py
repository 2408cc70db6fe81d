"""Formats: landing-file bytes -> polars frames, chosen by [source] format.

    reader.py   read_source: the one entry point, dispatching on [source] format
    csv.py      CSV/TSV through pyarrow, in blocks (parallel for big files), compressed or not
    jsonl.py    JSON lines
    excel.py    workbooks (fastexcel), sheets and ranges
    parquet.py  Parquet by row group
    salvage.py  record-by-record reading when the fast reader refuses a file: bad records
                become parse rejects with their line, the rest load
    text.py     byte counting and row numbering shared by the readers
    compress.py gzip, bz2, xz, zstd decompressed in the stream, a cut or corrupt one refused
    dates.py    date/time formats detected from a column's values
    nulls.py    null markers met, counted for the schema shown
    infer.py    the schema `chute load` creates a table with (types, NULLs, markers, formats)
    detect.py   the format from the content (magic bytes, the first character): chute load
    dialect.py  a CSV file's delimiter, quote, header and encoding sniffed; a wrong delimiter refused
    names.py    column names in snake_case, and PostgreSQL's limits (1,600 columns, 63 bytes)

May import: config, and the loose modules (errors, coltypes). Nothing above.
"""
