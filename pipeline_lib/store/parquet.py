"""Hive-partitioned Parquet data sets: upsert partitions, read with filters, watermarks.

Layout: ``<dataset>/<col>=<value>/.../part-0.parquet``, one file per partition. Partition
columns live only in the folder names; they are read back with an explicit schema (``year``
as an integer, everything else as a string, so ``series_id=0005`` stays ``"0005"``).
The ``date`` column is stored as a Parquet ``date32`` and read back as ``datetime64[ns]``.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline_lib.schema import DATE
from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join

YEAR = "year"
PART_FILE = "part-0.parquet"
_PARTITION_TYPES: dict[str, pa.DataType] = {YEAR: pa.int32()}


def with_year(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with an integer ``year`` column taken from ``date``."""
    out = df.copy()
    out[YEAR] = pd.to_datetime(out[DATE]).dt.year.astype("int32")
    return out


def _to_table(df: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if DATE in table.column_names:
        i = table.column_names.index(DATE)
        dates = pd.to_datetime(df[DATE]).dt.normalize().dt.date
        table = table.set_column(i, DATE, pa.array(dates, type=pa.date32()))
    return table


def _to_frame(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    if DATE in df.columns:
        df[DATE] = pd.to_datetime(df[DATE]).astype("datetime64[ns]")
    return df


def rows_not_in(new: pd.DataFrame, old: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """The rows of ``new`` whose ``key`` ``old`` lacks or holds with other values in any of
    ``new``'s columns (NaN equals NaN); all of them when ``old`` lacks one of the columns."""
    if old.empty or new.empty or any(c not in old.columns for c in new.columns):
        return new
    stored = _keyed(old[list(new.columns)], key).drop_duplicates(key, keep="last")
    both = _keyed(new, key).merge(stored, on=key, how="left", suffixes=("", "@old"), indicator=True)
    differs = (both["_merge"] == "left_only").to_numpy()
    for column in new.columns.drop(key):
        a, b = both[column], both[f"{column}@old"]
        differs |= ~((a == b) | (a.isna() & b.isna())).to_numpy()
    return new.loc[differs]


def _keyed(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """``df`` with its key columns in one type per kind: dates as datetime64[ns], the rest as
    text (so ``"0005"`` stays itself)."""
    out = df.reset_index(drop=True)
    for c in key:
        if c == DATE or pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
        else:
            out[c] = out[c].astype(str)
    return out


def unstored_rows(
    df: pd.DataFrame, dataset_url: str, key: list[str], partition_cols: list[str]
) -> pd.DataFrame:
    """The rows of ``df`` (holding its partition columns, see :func:`with_year`) that its
    partitions lack or hold with other values: what an upsert of ``df`` would change. Each
    partition's file is read directly (no scan of the data set)."""
    if df.empty:
        return df
    inner_key = [k for k in key if k not in partition_cols]
    parts = []
    for values, part in df.groupby(partition_cols, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        old = _read_file(join(_partition_dir(dataset_url, partition_cols, values), PART_FILE))
        new = part.drop_duplicates(inner_key, keep="last")
        if old is not None:
            kept = rows_not_in(new.drop(columns=partition_cols), old, inner_key)
            new = new.loc[kept.index]
        parts.append(new)
    return pd.concat(parts) if parts else df.iloc[:0]


def _partition_dir(dataset_url: str, cols: Sequence[str], values: tuple) -> str:
    return join(
        dataset_url, *[f"{c}={quote(str(v), safe='')}" for c, v in zip(cols, values, strict=True)]
    )


def _read_file(url: str) -> pd.DataFrame | None:
    fs, path = filesystem(url)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as f:
        return _to_frame(pq.read_table(f))


def upsert_partitions(
    df: pd.DataFrame, dataset_url: str, key: list[str], partition_cols: list[str]
) -> list[str]:
    """Merge ``df`` into the partitions it touches; returns the partition folders written.

    In each partition, existing rows whose ``key`` appears in ``df`` are replaced by
    ``df``'s rows (when ``df`` repeats a key, its last row wins), the result is sorted by
    ``key`` and written atomically as one ``part-0.parquet``. ``df`` must already hold the
    partition columns (see :func:`with_year`). Re-ingesting a day never duplicates it.
    """
    missing = [c for c in [*key, *partition_cols] if c not in df.columns]
    if missing:
        raise ValueError(f"upsert into {dataset_url}: columns {missing} missing from the data")
    if df.empty:
        return []
    inner_key = [k for k in key if k not in partition_cols]
    written: list[str] = []
    for values, part in df.groupby(partition_cols, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        folder = _partition_dir(dataset_url, partition_cols, values)
        new = part.drop(columns=partition_cols).drop_duplicates(inner_key, keep="last")
        old = _read_file(join(folder, PART_FILE))
        if old is not None and not old.empty:
            old_keys = pd.MultiIndex.from_frame(old[inner_key])
            new_keys = pd.MultiIndex.from_frame(new[inner_key])
            old = old[~old_keys.isin(new_keys)]
            merged = pd.concat([old, new], ignore_index=True) if not old.empty else new
        else:
            merged = new
        merged = merged.sort_values(inner_key, kind="stable").reset_index(drop=True)
        buf = io.BytesIO()
        pq.write_table(_to_table(merged), buf)
        atomic_write_bytes(join(folder, PART_FILE), buf.getvalue())
        written.append(folder)
    return written


def _partitioning(fs: fsspec.AbstractFileSystem, root: str) -> ds.Partitioning | None:
    """Hive partitioning discovered from the folder names, with explicit field types."""
    fields: list[pa.Field] = []
    path = root
    while True:
        subdirs = sorted(
            p["name"].rstrip("/")
            for p in fs.ls(path, detail=True)
            if p["type"] == "directory" and "=" in posixpath.basename(p["name"].rstrip("/"))
        )
        if not subdirs:
            break
        name = posixpath.basename(subdirs[0]).split("=", 1)[0]
        fields.append(pa.field(name, _PARTITION_TYPES.get(name, pa.string())))
        path = subdirs[0]
    return ds.partitioning(pa.schema(fields), flavor="hive") if fields else None


def _dataset(dataset_url: str) -> ds.Dataset | None:
    fs, root = filesystem(dataset_url)
    if not fs.exists(root):
        return None
    return ds.dataset(root, filesystem=fs, format="parquet", partitioning=_partitioning(fs, root))


def _unified(dataset: ds.Dataset) -> ds.Dataset:
    """The data set over the union of its files' columns (the dataset's own schema is its
    first file's): a column some files lack reads as null there."""
    fragments = list(dataset.get_fragments())
    schemas = [f.physical_schema for f in fragments]
    partition = [f for f in dataset.schema if f.name not in pa.unify_schemas(schemas).names]
    unified = pa.unify_schemas([*schemas, pa.schema(partition)], promote_options="permissive")
    return _over(dataset, fragments, unified, _base_dir(fragments))


def _over(
    dataset: ds.Dataset, fragments: list[ds.Fragment], schema: pa.Schema, base_dir: str
) -> ds.Dataset:
    """A data set of ``fragments``' files only, with ``dataset``'s file system and Hive
    partitioning under ``base_dir``, read with ``schema``."""
    return ds.dataset(
        [f.path for f in fragments],
        schema=schema,
        filesystem=dataset.filesystem,
        format="parquet",
        partitioning=dataset.partitioning,
        partition_base_dir=base_dir,
    )


def _base_dir(fragments: list[ds.Fragment]) -> str:
    """The root folder of a Hive-partitioned data set's files."""
    first = fragments[0].path
    parts = first.split("/")
    return "/".join(p for p in parts[: next(i for i, p in enumerate(parts) if "=" in p)])


def read_dataset(
    dataset_url: str,
    columns: list[str] | None = None,
    filters: Mapping[str, Sequence[Any]] | None = None,
    date_to: dt.date | None = None,
    date_from: dt.date | None = None,
) -> pd.DataFrame:
    """Rows of a data set, optionally filtered; ``columns=None`` reads every column.

    ``filters`` maps a column to the values to keep, e.g. ``{"series_id": ["SP500"]}``;
    ``date_from``/``date_to`` bound ``date`` (inclusive). A data set that does not exist
    reads as an empty frame with ``columns``. The ``year`` helper column is dropped.
    """
    dataset = _dataset(dataset_url)
    if dataset is None or not dataset.files:
        return pd.DataFrame(columns=columns or [])
    expr = None
    for col, vals in (filters or {}).items():
        typ = dataset.schema.field(col).type
        cond = ds.field(col).isin(pa.array(list(vals)).cast(typ))
        expr = cond if expr is None else expr & cond
    for bound, op in ((date_from, "ge"), (date_to, "le")):
        if bound is not None:
            scalar = pa.scalar(pd.Timestamp(bound).date(), type=pa.date32())
            cond = ds.field(DATE) >= scalar if op == "ge" else ds.field(DATE) <= scalar
            if YEAR in dataset.schema.names:  # whole partitions skipped, their files unopened
                year = pa.scalar(pd.Timestamp(bound).year, type=pa.int32())
                cond &= ds.field(YEAR) >= year if op == "ge" else ds.field(YEAR) <= year
            expr = cond if expr is None else expr & cond
    if columns is not None and any(c not in dataset.schema.names for c in columns):
        dataset = _unified(dataset)  # files written before a column was added lack it
    if columns is not None:
        unknown = [c for c in columns if c not in dataset.schema.names]
        if unknown:
            raise KeyError(f"{dataset_url} has no columns {unknown} (has: {dataset.schema.names})")
    wanted = columns if columns is not None else [c for c in dataset.schema.names if c != YEAR]
    df = _to_frame(_read_table(dataset, wanted, expr))
    return df.drop(columns=[YEAR], errors="ignore").reset_index(drop=True)


FILES_PER_READ = 500


def _read_table(dataset: ds.Dataset, columns: list[str], expr: ds.Expression | None) -> pa.Table:
    """The rows of ``dataset`` matching ``expr``, in its files' order, read ``FILES_PER_READ``
    files at a time: a data set keeps the Parquet metadata of every file it has read, about 85
    KB a file of 18 columns, so the 10,000 files of 1,000 series x 10 years read at once held
    0.85 GB of it beside 0.37 GB of rows."""
    fragments = list(dataset.get_fragments(filter=expr))  # partition pruning: nothing read
    if len(fragments) <= FILES_PER_READ:
        return dataset.to_table(columns=columns, filter=expr)
    base = _base_dir(fragments)
    parts = []
    for i in range(0, len(fragments), FILES_PER_READ):
        group = _over(dataset, fragments[i : i + FILES_PER_READ], dataset.schema, base)
        parts.append(group.to_table(columns=columns, filter=expr))
    return pa.concat_tables(parts)


def stored_keys(dataset_url: str, key_col: str) -> set[str]:
    """The values of the first partition column ``key_col`` that have a folder (no file read)."""
    fs, root = filesystem(dataset_url)
    if not fs.exists(root):
        return set()
    prefix = f"{key_col}="
    names = [posixpath.basename(str(p).rstrip("/")) for p in fs.ls(root, detail=False)]
    return {unquote(n[len(prefix) :]) for n in names if n.startswith(prefix)}


def watermarks(dataset_url: str, key_col: str) -> dict[str, dt.date]:
    """Newest ``date`` per value of ``key_col``, read from the data itself ({} if none)."""
    df = read_dataset(dataset_url, columns=[key_col, DATE])
    if df.empty:
        return {}
    newest = df.groupby(key_col)[DATE].max()
    return {str(k): pd.Timestamp(v).date() for k, v in newest.items()}
