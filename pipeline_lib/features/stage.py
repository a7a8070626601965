"""The features stage: curated data as of a date -> feature rows, stored as partitioned Parquet."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.curate import read_covariates, read_curated
from pipeline_lib.errors import CovariateMissing
from pipeline_lib.features.build import build_features
from pipeline_lib.features.covariates import missing_covariates
from pipeline_lib.features.holidays import holiday_values
from pipeline_lib.features.values import covariate_frame, covariate_rows
from pipeline_lib.store import read_dataset, upsert_partitions, with_year
from pipeline_lib.validation import raise_if_failed, validate_batch

log = logging.getLogger(__name__)


def refresh_features(settings: Settings, as_of: dt.date) -> int:
    """Bring the stored features of every configured series up to date with curated data
    dated <= as_of.

    The features are computed from curated data (vectorised over every series), then compared
    with the stored ones: only the rows that are new or differ (a new day, a revised price, a
    covariate issued since) are validated (``features_suite``) and upserted on (series_id,
    date), so a night writes the partitions of its new rows, not the whole history. Rows dated
    after ``as_of`` (from a later run) are left as they are. Returns the number of feature rows
    written. A critical validation failure raises ValidationFailed and nothing is written.
    """
    locations = {s.id: (s.weather.name if s.weather else None) for s in settings.series}
    prices = read_curated(settings.data_dir, schema.PRICES, list(locations), as_of)
    weather = read_curated(
        settings.data_dir, schema.WEATHER, sorted({v for v in locations.values() if v}), as_of
    )
    feature_set = settings.feature_set
    covariates = read_covariates(settings.data_dir, list(locations), as_of)
    computed = [calendar_covariates(settings, prices, as_of), weather_covariates(settings, weather)]
    covariates = covariate_frame([covariates, *computed])
    frequencies = settings.frequencies
    feats = build_features(prices, weather, locations, as_of, covariates, feature_set, frequencies)
    if not feats.empty:
        check_covariates(settings, feats, as_of)
        feats = changed_rows(feats, settings, as_of)
    if not feats.empty:
        extra = [*feature_set.covariate_names, *feature_set.lead_columns]
        signed = any(s.negative_prices for s in settings.series)
        report = validate_batch(
            feats, schema.FEATURES, as_of, f"features-{as_of.isoformat()}",
            signed=signed, covariates=extra,
        )  # fmt: skip
        raise_if_failed([report], {report.key: "none: features not written (rebuilt on rerun)"})
        upsert_partitions(
            with_year(feats),
            paths.features_dir(settings.data_dir),
            key=schema.FEATURE_KEY,
            partition_cols=[schema.SERIES_ID, "year"],
        )
    return len(feats)


def changed_rows(feats: pd.DataFrame, settings: Settings, as_of: dt.date) -> pd.DataFrame:
    """The rows of ``feats`` that the stored features lack or hold with other values (NaN
    equals NaN); every row when the stored features lack one of its columns."""
    stored = read_dataset(
        paths.features_dir(settings.data_dir),
        filters={schema.SERIES_ID: sorted(feats[schema.SERIES_ID].astype(str).unique())},
        date_to=as_of,
    )
    if stored.empty or any(c not in stored.columns for c in feats.columns):
        return feats
    key = list(schema.FEATURE_KEY)
    old = stored[list(feats.columns)].astype({schema.SERIES_ID: str})
    new = feats.astype({schema.SERIES_ID: str})
    both = new.merge(old, on=key, how="left", suffixes=("", "@stored"), indicator=True)
    differs = (both["_merge"] == "left_only").to_numpy()
    for column in feats.columns.drop(key):
        a, b = both[column], both[f"{column}@stored"]
        differs |= ~((a == b) | (a.isna() & b.isna())).to_numpy()
    return feats.loc[differs]


def calendar_covariates(settings: Settings, prices: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The values of the holiday covariates, from each series' first price to as far ahead as
    each is known (computed, not stored: a calendar is known in advance)."""
    parts = []
    for s in settings.series:
        rows = prices.loc[prices[schema.SERIES_ID] == s.id, schema.DATE]
        if rows.empty:
            continue
        start = pd.Timestamp(rows.min()).date()
        for c in s.covariates:
            if c.source == "holidays":
                end = as_of + dt.timedelta(days=c.known_ahead)
                country, subdivision = c.options["country"], c.options.get("subdivision")
                parts.append(
                    holiday_values(s.id, c.name, country, subdivision, start, end, c.known_ahead)
                )
    return covariate_frame(parts)


def weather_covariates(settings: Settings, weather: pd.DataFrame) -> pd.DataFrame:
    """The values of the past weather covariates: a column of the curated weather of the
    series' location, the value for day d issued on d (observed; read, not stored twice)."""
    parts = []
    for s in settings.series:
        past = [c for c in s.covariates if c.source == "weather" and c.role == "past"]
        if not past or s.weather is None or weather.empty:
            continue
        rows = weather.loc[weather[schema.LOCATION] == s.weather.name]
        dates = rows[schema.DATE]
        for c in past:
            parts.append(covariate_rows(s.id, c.name, dates, dates, rows[c.file_column]))
    return covariate_frame(parts)


def check_covariates(settings: Settings, feats: pd.DataFrame, as_of: dt.date) -> list[str]:
    """Name what tonight's forecast lacks of the declared covariates (series, covariate,
    dates): an error (:class:`CovariateMissing`) for a ``required`` one, a logged warning,
    returned, for one whose policy is ``mask`` (the model then sees it as unknown)."""
    declared = {
        s.id: {c.name: (c.role, c.known_ahead, c.missing) for c in s.covariates}
        for s in settings.series
    }
    frequencies = settings.frequencies
    found = missing_covariates(feats, declared, frequencies, as_of)
    required = [m.describe() for m in found if m.policy == "required"]
    if required:
        raise CovariateMissing(required)
    warnings = [f"{m.describe()} (policy mask: seen as unknown)" for m in found]
    for warning in warnings:
        log.warning(warning)
    return warnings


def load_features(settings: Settings, as_of: dt.date) -> pd.DataFrame:
    """Stored features of the configured series, dated on or before ``as_of`` only."""
    feats = read_dataset(
        paths.features_dir(settings.data_dir),
        columns=settings.feature_set.columns,
        filters={schema.SERIES_ID: settings.series_ids},
        date_to=as_of,
    )
    return feats.sort_values(schema.FEATURE_KEY).reset_index(drop=True)
