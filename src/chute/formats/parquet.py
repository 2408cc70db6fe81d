"""Parquet -> polars frames, a bounded number of rows at a time.

pyarrow's ParquetFile reads the footer, then row groups on demand: iter_batches yields
record batches of at most `rows` rows, so a file much bigger than memory is read in pieces.
The row count per batch is derived from the byte budget and the file's own average row size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from chute.errors import ReadError
from chute.config.project import Source

Data = pa.Buffer | str | Callable[[], BinaryIO]


def read_parquet(data: Data, source: Source, block_bytes: int = 64 << 20) -> Iterator[pl.DataFrame]:
    """Yield frames of the file's rows. Raises ReadError when the bytes are not Parquet."""
    if callable(data):  # a stream that cannot seek (an S3 body): Parquet needs its footer first
        stream = data()
        try:
            data = pa.py_buffer(stream.read())
        finally:
            stream.close()
    handle = pa.BufferReader(data) if isinstance(data, pa.Buffer) else data
    try:
        parquet = pq.ParquetFile(handle)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReadError(f"not a Parquet file: {exc}") from None
    meta = parquet.metadata
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    rows = max(1024, int(block_bytes / max(1.0, size / max(1, meta.num_rows))))
    yielded = False
    try:
        for batch in parquet.iter_batches(batch_size=rows):
            yielded = True
            yield _frame(pa.Table.from_batches([batch]))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReadError(f"cannot read the Parquet file: {exc}") from None
    if not yielded:  # no rows: still one (empty) frame, so the columns are known
        yield _frame(parquet.schema_arrow.empty_table())


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
