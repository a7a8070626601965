"""DataFrames to Arrow tables typed like the SQL table they go to, vectorised.

One conversion for both write paths: ``to_pylist()`` for executemany, CSV for COPY. Errors
name the table, the column and example rows, so a bad frame is refused before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, String, Table, Text


def arrow_type(column_type: Any) -> pa.DataType:
    if isinstance(column_type, Date):
        return pa.date32()
    if isinstance(column_type, DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(column_type, Float):
        return pa.float64()
    if isinstance(column_type, Integer):
        return pa.int64()
    if isinstance(column_type, Boolean):
        return pa.bool_()
    if isinstance(column_type, String | Text):
        return pa.string()
    raise TypeError(f"no Arrow type for {column_type!r}")


def to_arrow(
    table: Table, df: pd.DataFrame, constants: Mapping[str, Any] | None = None
) -> pa.Table:
    """The rows of ``df`` as an Arrow table with the columns of ``table`` that ``df`` or
    ``constants`` (one value for every row, e.g. run_id) provide, in table order.

    Raises ValueError naming what is wrong: a column missing, a value that does not convert.
    """
    constants = dict(constants or {})
    present = set(df.columns) | set(constants)
    missing = [c.name for c in table.columns if c.name not in present and _required(c)]
    if missing:
        raise ValueError(
            f"{table.name}: missing columns {missing}; got {sorted(map(str, df.columns))}"
        )
    arrays, names = [], []
    for column in table.columns:
        constant = column.name in constants
        if constant:  # converted once, then repeated for every row
            values: Any = pd.Series([constants[column.name]], dtype=object)
        elif column.name in df.columns:
            values = df[column.name]
        else:
            continue
        try:
            array = _convert(values, arrow_type(column.type))
        except (ValueError, TypeError, pa.ArrowException) as exc:
            bad = _bad_rows(values, column)
            raise ValueError(f"{table.name}.{column.name}: {bad}: {exc}") from exc
        arrays.append(pa.repeat(array[0], len(df)) if constant else array)
        names.append(column.name)
    return pa.table(arrays, names=names)


def _required(column: Any) -> bool:
    return not column.nullable and column.server_default is None


def _convert(values: pd.Series, kind: pa.DataType) -> pa.Array:
    if pa.types.is_date32(kind):
        days = pd.to_datetime(values.reset_index(drop=True)).to_numpy().astype("datetime64[D]")
        return pa.array(days, type=kind)
    if pa.types.is_timestamp(kind):
        stamps = pd.to_datetime(values.reset_index(drop=True), utc=True)
        return pa.array(stamps.dt.tz_convert("UTC"), type=kind)
    if pa.types.is_string(kind):
        text = values.astype("string").reset_index(drop=True)
        return pa.array(text, type=kind, from_pandas=True)
    if pa.types.is_float64(kind):
        return pa.array(pd.to_numeric(values).astype("float64").to_numpy(), from_pandas=True)
    return pa.array(values.reset_index(drop=True), type=kind, from_pandas=True)


def _bad_rows(values: pd.Series, column: Any) -> str:
    """Which rows fail to convert, for the error message."""
    bad = []
    for i, value in enumerate(values.tolist()):
        try:
            _convert(pd.Series([value], dtype=object), arrow_type(column.type))
        except (ValueError, TypeError, pa.ArrowException):
            bad.append((i, value))
        if len(bad) >= 3:
            break
    return f"cannot convert rows {bad}" if bad else "cannot convert the column"
