"""Rows of Python values (as a database driver returns them) into Arrow, one column at a time.

Each column keeps the type its first typed page gave it, so the parts of one run agree; a
value Arrow cannot type (a UUID, a JSON value of mixed shapes) makes its column text.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa


def to_arrow(rows: list[tuple], names: list[str], types: dict[str, pa.DataType],
             casts: dict[str, pa.DataType] | None = None) -> pa.Table:
    """A page as an Arrow table; text in `casts` columns (SQLite's timestamps) is parsed into
    the type given there."""
    return pa.Table.from_arrays([to_array([r[i] for r in rows], name, types, casts) for i, name in enumerate(names)],
                                names=names)


def to_array(values: list[Any], name: str, types: dict[str, pa.DataType],
             casts: dict[str, pa.DataType] | None = None) -> pa.Array:
    """One column of a page, in the type `types` holds for it (recorded there on its first typed page)."""
    known = types.get(name)
    array = None
    if known is not None and not pa.types.is_null(known):
        try:
            array = pa.array(values, type=known)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            array = None
    if array is None:
        array = _infer(values)
        if casts and name in casts and pa.types.is_string(array.type):
            try:
                array = array.cast(casts[name])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        if not pa.types.is_null(array.type):
            types[name] = array.type
    return array


def _infer(values: list[Any]) -> pa.Array:
    try:
        array = pa.array(values)
        if pa.types.is_decimal128(array.type) and array.type.precision < 38:
            # Widest precision at the scale seen: the next pages' bigger values then fit the same type.
            array = array.cast(pa.decimal128(38, array.type.scale))
        return array
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    text = [None if v is None else (json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v))
            for v in values]
    return pa.array(text, pa.string())
