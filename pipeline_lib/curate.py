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
    schema.COVARIATES: (schema.COVARIATE_COLUMNS, schema.COVARIATE_KEY, schema.SERIES_ID),
}


def _upsert(data_dir: str, dataset: str, frame: pd.DataFrame) -> None:
    columns, key, key_col = _LAYOUT[dataset]
    if not frame.empty:
        upsert_partitions(
            with_year(frame[columns]),
            paths.curated_dir(data_dir, dataset),
            key=key,
            partition_cols=[key_col, "year"],
        )


def commit_batches(data_dir: str, batches: list[Batch]) -> dict[str, int]:
    """Upsert every batch into its curated data set; returns rows written per batch name.

    Call only once every batch of the run has passed validation. Partitions are written in
    date order, each atomically, so the derived watermark never skips a day after a crash.
    Dropped files are recorded as taken only after their batch's rows are written.
    """
    written: dict[str, int] = {}
    for batch in batches:
        rows = batch.data[_LAYOUT[batch.dataset][0]]
        if batch.covariates is not None:  # before the prices: their watermark says "done"
            _upsert(data_dir, schema.COVARIATES, batch.covariates)
            written[f"{schema.COVARIATES}-{batch.key}"] = len(batch.covariates)
        _upsert(data_dir, batch.dataset, rows)
        if batch.files:
            record_files(data_dir, batch.dataset, batch.key, batch.files)
        written[batch.name] = len(rows)
    return written


def read_curated(
    data_dir: str,
    dataset: str,
    keys: list[str],
    as_of: dt.date | None = None,
    start: dt.date | None = None,
) -> pd.DataFrame:
    """Curated rows of ``dataset`` for ``keys`` (series ids or locations), dated <= ``as_of``
    (and >= ``start``)."""
    columns, _, key_col = _LAYOUT[dataset]
    if not keys:
        return pd.DataFrame(columns=columns)
    return read_dataset(
        paths.curated_dir(data_dir, dataset),
        columns=columns,
        filters={key_col: keys},
        date_to=as_of,
        date_from=start,
    )


def read_covariates(
    data_dir: str, series_ids: list[str], as_of: dt.date, names: list[str] | None = None
) -> pd.DataFrame:
    """Curated covariate values of ``series_ids`` issued on or before ``as_of`` (any date they
    are for, later ones included: a day-ahead forecast), ``schema.COVARIATE_COLUMNS``."""
    columns = schema.COVARIATE_COLUMNS
    if not series_ids:
        return pd.DataFrame(columns=columns)
    filters: dict[str, list[str]] = {schema.SERIES_ID: series_ids}
    if names is not None:
        filters[schema.COVARIATE] = names
    frame = read_dataset(paths.curated_dir(data_dir, schema.COVARIATES), columns, filters)
    if frame.empty:
        return frame
    issued = pd.to_datetime(frame[schema.ISSUED])
    frame = frame.assign(**{schema.ISSUED: issued.astype("datetime64[ns]")})
    return frame.loc[issued <= pd.Timestamp(as_of)].reset_index(drop=True)
