"""Ingest of weather forecasts as issued: the values of the future weather covariates.

A future covariate with ``source = "weather"`` reads a column of the weather *forecast* of its
series' location (:mod:`pipeline_lib.ingest.sources.open_meteo_runs`): the value for day d with lead
h is issued on d - h, for h = 1..``known_ahead``. The values are committed to
``curated/covariates`` like an exogenous data set's, validated by the covariates suite first.
Past weather covariates are not stored: the features stage reads them from curated weather
(:func:`pipeline_lib.features.stage.weather_covariates`).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import Settings
from pipeline_lib.ingest.batch import Batch, fetch_window
from pipeline_lib.ingest.covariate_values import covariate_frame, covariate_rows
from pipeline_lib.ingest.curate import read_covariates
from pipeline_lib.ingest.sources import OpenMeteoRunsSource, weather_forecast_covariates
from pipeline_lib.ingest.sources.open_meteo_runs import read_runs_json
from pipeline_lib.store import land_raw


def forecast_values(
    settings: Settings, location: str, frames: list[pd.DataFrame], as_of: dt.date
) -> pd.DataFrame:
    """The covariate rows (``schema.COVARIATE_COLUMNS``) of the forecasts ``frames`` (see
    ``read_runs_json``) of ``location``: per series and future weather covariate there, the
    values of its column issued on or before ``as_of`` at most ``known_ahead`` days ahead."""
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    parts = []
    for series, c in weather_forecast_covariates(settings).get(location, []):
        if data.empty or c.file_column not in data.columns:
            continue
        ahead = (data[schema.DATE] - data[schema.ISSUED]).dt.days
        keep = ahead.between(1, c.known_ahead) & (data[schema.ISSUED] <= pd.Timestamp(as_of))
        rows = data.loc[keep]
        parts.append(
            covariate_rows(
                series.id, c.name, rows[schema.DATE], rows[schema.ISSUED], rows[c.file_column]
            )
        )
    return covariate_frame(parts, unique=True)


def _watermark(settings: Settings, location: str, as_of: dt.date) -> dt.date | None:
    """The newest issue day of the location's curated forecast values (None: none yet)."""
    uses = weather_forecast_covariates(settings).get(location, [])
    ids, names = sorted({s.id for s, _ in uses}), sorted({c.name for _, c in uses})
    stored = read_covariates(settings.data_dir, ids, as_of, names)
    if stored.empty:
        return None
    return pd.Timestamp(stored[schema.ISSUED].max()).date()


def ingest_weather_forecasts(
    settings: Settings,
    source: OpenMeteoRunsSource,
    as_of: dt.date,
    start: dt.date | None = None,
) -> Batch:
    """Fetch the forecasts issued on the days after the newest one curated up to ``as_of``
    (``start``: a backfill's exact range; see ``ingest.fetch_window``), land every payload in
    raw/ before parsing it, and return their covariate rows as a batch of ``covariates``."""
    location = source.location.name
    window = fetch_window(
        _watermark(settings, location, as_of),
        settings.start_date,
        as_of,
        settings.ingest.revision_lookback_days,
        start,
    )
    if window is None:
        return Batch(
            schema.COVARIATES, source.key, source.name, (as_of, as_of), covariate_frame([])
        )
    payloads = source.fetch(*window)
    raw_paths = [land_raw(settings.data_dir, p) for p in payloads]
    frames = [read_runs_json(p) for p in payloads]
    values = forecast_values(settings, location, frames, as_of)
    return Batch(
        schema.COVARIATES, source.key, source.name, window, values, raw_paths,
        inputs=[p.name for p in payloads],
    )  # fmt: skip
