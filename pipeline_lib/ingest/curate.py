"""Curated data: commit validated batches into Hive-partitioned Parquet, and read it back."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.ingest.batch import Batch
from pipeline_lib.store import read_dataset, upsert_partitions, with_year
from pipeline_lib.store.changes import Change, record_changes
from pipeline_lib.store.manifest import record_files
from pipeline_lib.store.parquet import unstored_rows

_LAYOUT = {
    schema.PRICES: (schema.PRICE_COLUMNS, schema.PRICE_KEY, schema.SERIES_ID),
    schema.WEATHER: (schema.WEATHER_COLUMNS, schema.WEATHER_KEY, schema.LOCATION),
    schema.COVARIATES: (schema.COVARIATE_COLUMNS, schema.COVARIATE_KEY, schema.SERIES_ID),
}


def _unstored(data_dir: str, dataset: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (with ``year``) that curated ``dataset`` lacks or holds otherwise."""
    columns, key, key_col = _LAYOUT[dataset]
    url = paths.curated_dir(data_dir, dataset)
    return unstored_rows(with_year(frame[columns]), url, key, [key_col, "year"])


def commit_batches(data_dir: str, batches: list[Batch]) -> dict[str, int]:
    """Upsert every batch into its curated data set; returns rows taken per batch name.

    Call only once every batch of the run has passed validation. Only the rows that are new or
    differ from the curated ones are written (a file delivered again rewrites nothing it
    repeats). Before any row is written, a change note names, per data set and key, the
    earliest date written (:mod:`pipeline_lib.store.changes`): the features stage rebuilds
    from there. Partitions are written in date order, each atomically, so the derived
    watermark never skips a day after a crash. Dropped files are recorded as taken only after
    their batch's rows are written.
    """
    plan: list[tuple[Batch, pd.DataFrame | None, pd.DataFrame]] = []
    notes: dict[tuple[str, str], Change] = {}
    for batch in batches:
        covariates = None
        if batch.covariates is not None:
            covariates = _unstored(data_dir, schema.COVARIATES, batch.covariates)
            _note(notes, schema.COVARIATES, covariates)
        rows = _unstored(data_dir, batch.dataset, batch.data)
        _note(notes, batch.dataset, rows)
        plan.append((batch, covariates, rows))
    record_changes(data_dir, notes.values())
    written: dict[str, int] = {}
    for batch, covariates, rows in plan:
        if covariates is not None:  # before the prices: their watermark says "done"
            assert batch.covariates is not None  # covariates: its rows not yet stored
            _write(data_dir, schema.COVARIATES, covariates)
            written[f"{schema.COVARIATES}-{batch.key}"] = len(batch.covariates)
        _write(data_dir, batch.dataset, rows)
        if batch.files:
            record_files(data_dir, batch.dataset, batch.key, batch.files)
        written[batch.name] = len(batch.data)
    return written


def _note(notes: dict[tuple[str, str], Change], dataset: str, frame: pd.DataFrame) -> None:
    """Fold the earliest date (and issue date) of ``frame``'s rows per key into ``notes``."""
    key_col = _LAYOUT[dataset][2]
    if frame.empty:
        return
    keys = frame[key_col].astype(str).to_numpy()
    since = pd.to_datetime(frame[schema.DATE]).groupby(keys).min()
    issued = None
    if schema.ISSUED in frame.columns:
        issued = pd.to_datetime(frame[schema.ISSUED]).groupby(keys).min()
    for key, first in since.items():
        day = pd.Timestamp(first).date()
        on = pd.Timestamp(issued[key]).date() if issued is not None else None
        old = notes.get((dataset, str(key)))
        if old is not None:
            day = min(day, old.since)
            on = min(on, old.issued) if on and old.issued else (on or old.issued)
        notes[(dataset, str(key))] = Change(dataset, str(key), day, on)


def _write(data_dir: str, dataset: str, rows: pd.DataFrame) -> None:
    _, key, key_col = _LAYOUT[dataset]
    if not rows.empty:
        url = paths.curated_dir(data_dir, dataset)
        upsert_partitions(rows, url, key=key, partition_cols=[key_col, "year"])


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
    data_dir: str,
    series_ids: list[str],
    as_of: dt.date,
    names: list[str] | None = None,
    start: dt.date | None = None,
) -> pd.DataFrame:
    """Curated covariate values of ``series_ids`` issued on or before ``as_of`` (any date they
    are for, later ones included: a day-ahead forecast), for dates from ``start`` on (None:
    every date), ``schema.COVARIATE_COLUMNS``."""
    columns = schema.COVARIATE_COLUMNS
    if not series_ids:
        return pd.DataFrame(columns=columns)
    filters: dict[str, list[str]] = {schema.SERIES_ID: series_ids}
    if names is not None:
        filters[schema.COVARIATE] = names
    url = paths.curated_dir(data_dir, schema.COVARIATES)
    frame = read_dataset(url, columns, filters, date_from=start)
    if frame.empty:
        return frame
    issued = pd.to_datetime(frame[schema.ISSUED])
    frame = frame.assign(**{schema.ISSUED: issued.astype("datetime64[ns]")})
    return frame.loc[issued <= pd.Timestamp(as_of)].reset_index(drop=True)
