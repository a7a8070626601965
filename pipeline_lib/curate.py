"""Curated data: commit validated batches into Hive-partitioned Parquet, and read it back."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.ingest import Batch
from pipeline_lib.store import read_dataset, upsert_partitions, with_year
from pipeline_lib.store.manifest import record_files

_LAYOUT = {
    schema.PRICES: (schema.PRICE_COLUMNS, schema.PRICE_KEY, schema.SERIES_ID),
    schema.WEATHER: (schema.WEATHER_COLUMNS, schema.WEATHER_KEY, schema.LOCATION),
}


def commit_batches(data_dir: str, batches: list[Batch]) -> dict[str, int]:
    """Upsert every batch into its curated data set; returns rows written per batch name.

    Call only once every batch of the run has passed validation. Partitions are written in
    date order, each atomically, so the derived watermark never skips a day after a crash.
    Dropped files are recorded as taken only after their batch's rows are written.
    """
    written: dict[str, int] = {}
    for batch in batches:
        columns, key, key_col = _LAYOUT[batch.dataset]
        rows = batch.data[columns]
        if not rows.empty:
            upsert_partitions(
                with_year(rows),
                paths.curated_dir(data_dir, batch.dataset),
                key=key,
                partition_cols=[key_col, "year"],
            )
        if batch.files:
            record_files(data_dir, batch.dataset, batch.key, batch.files)
        written[batch.name] = len(rows)
    return written


def read_curated(
    data_dir: str, dataset: str, keys: list[str], as_of: dt.date | None = None
) -> pd.DataFrame:
    """Curated rows of ``dataset`` for ``keys`` (series ids or locations), dated <= ``as_of``."""
    columns, _, key_col = _LAYOUT[dataset]
    if not keys:
        return pd.DataFrame(columns=columns)
    return read_dataset(
        paths.curated_dir(data_dir, dataset),
        columns=columns,
        filters={key_col: keys},
        date_to=as_of,
    )
