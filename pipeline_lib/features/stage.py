"""The features stage: curated data as of a date -> feature rows, stored as partitioned Parquet."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.errors import CovariateMissing
from pipeline_lib.features.build import LOOKBACK_ROWS, build_features
from pipeline_lib.features.covariates import missing_covariates
from pipeline_lib.features.holidays import holiday_values
from pipeline_lib.features.state import (
    SeriesState,
    fold_changes,
    read_state,
    series_digests,
    write_state,
)
from pipeline_lib.ingest.covariate_values import covariate_frame, covariate_rows
from pipeline_lib.ingest.curate import read_covariates, read_curated
from pipeline_lib.store import read_dataset, upsert_partitions, with_year
from pipeline_lib.store.changes import drop_changes, take_changes
from pipeline_lib.store.parquet import rows_not_in, stored_keys
from pipeline_lib.validation import raise_if_failed, validate_batch

log = logging.getLogger(__name__)

LOOKBACK_DAYS = 3 * LOOKBACK_ROWS  # calendar days read before a rebuild's first date


def refresh_features(settings: Settings, as_of: dt.date) -> int:
    """Bring the stored features of every configured series up to date with curated data
    dated <= as_of.

    Only what may have changed is computed (:mod:`pipeline_lib.features.state`): per series,
    from the earliest day curated data changed since the last refresh (the change notes of
    :mod:`pipeline_lib.store.changes`) or the day after the newest date built, reading the
    ``LOOKBACK_ROWS`` rows before it; a series whose inputs (feature set, covariates, location,
    calendar) changed, or that is new, is computed whole. The computed rows are compared with
    the stored ones: only those that are new or differ are validated (``features_suite``) and
    upserted on (series_id, date), so a night writes the partitions of its new rows. Rows dated
    after ``as_of`` (from a later run) are left as they are. Returns the number of feature rows
    written. A critical validation failure raises ValidationFailed and nothing is written.
    """
    data_dir = settings.data_dir
    changes, notes = take_changes(data_dir)
    present = stored_keys(paths.features_dir(data_dir), schema.SERIES_ID)
    state = {k: v for k, v in read_state(data_dir).items() if k in present}  # none: deleted
    state = fold_changes(state, changes, settings)
    if notes:  # the changes are in the state before their notes go
        write_state(data_dir, state)
        drop_changes(data_dir, notes)
    digests = series_digests(settings)
    starts: dict[str, dt.date | None] = {}
    for sid, digest in digests.items():
        todo, start = state[sid].start(digest, as_of) if sid in state else (True, None)
        if todo:
            starts[sid] = start
    groups: dict[dt.date | None, list[str]] = {}
    for sid, start in starts.items():
        groups.setdefault(start, []).append(sid)
    computed = [_computed(settings, as_of, ids, start) for start, ids in groups.items()]
    feats = pd.concat([f for f in computed if not f.empty] or [pd.DataFrame()], ignore_index=True)
    if not feats.empty:
        feature_set = settings.feature_set
        extra = [*feature_set.covariate_names, *feature_set.lead_columns]
        signed = any(s.negative_prices for s in settings.series)
        report = validate_batch(
            feats, schema.FEATURES, as_of, f"features-{as_of.isoformat()}",
            signed=signed, covariates=extra,
        )  # fmt: skip
        raise_if_failed([report], {report.key: "none: features not written (rebuilt on rerun)"})
        upsert_partitions(
            with_year(feats),
            paths.features_dir(data_dir),
            key=schema.FEATURE_KEY,
            partition_cols=[schema.SERIES_ID, "year"],
        )
    if starts:
        for sid in starts:
            old = state.get(sid, SeriesState(digests[sid], as_of))
            state[sid] = old.built(digests[sid], as_of)
        write_state(data_dir, state)
    return len(feats)


def _computed(
    settings: Settings, as_of: dt.date, series_ids: list[str], start: dt.date | None
) -> pd.DataFrame:
    """The feature rows of ``series_ids`` dated ``start``..``as_of`` (None: every date) that
    the stored features lack or hold with other values, computed from the curated rows of the
    ``LOOKBACK_ROWS`` rows before ``start`` on (the whole history of a series that has fewer
    within ``LOOKBACK_DAYS``). Tonight's covariates are checked on every row computed."""
    log.info(
        "features of %d series: %s", len(series_ids),
        "every date" if start is None else f"from {start.isoformat()}",
    )  # fmt: skip
    read_from = None if start is None else start - dt.timedelta(days=LOOKBACK_DAYS)
    prices = read_curated(settings.data_dir, schema.PRICES, series_ids, as_of, read_from)
    if start is not None:
        before = prices.loc[prices[schema.DATE] < pd.Timestamp(start), schema.SERIES_ID]
        counts = before.astype(str).value_counts()
        short = [sid for sid in series_ids if counts.get(sid, 0) < LOOKBACK_ROWS]
        if short:  # a gap in the window, or a short history: those series from their start
            whole = read_curated(settings.data_dir, schema.PRICES, short, as_of)
            kept = prices.loc[~prices[schema.SERIES_ID].astype(str).isin(short)]
            prices = pd.concat([kept, whole], ignore_index=True)
            if not whole.empty:
                read_from = min(read_from, whole[schema.DATE].min().date())
    feats = _build(settings, as_of, series_ids, prices, read_from)
    if feats.empty:
        return feats
    check_covariates(settings, feats, as_of)
    if start is not None:
        feats = feats.loc[feats[schema.DATE] >= pd.Timestamp(start)].reset_index(drop=True)
    return changed_rows(feats, settings, as_of, start)


def _build(
    settings: Settings,
    as_of: dt.date,
    series_ids: list[str],
    prices: pd.DataFrame,
    read_from: dt.date | None,
) -> pd.DataFrame:
    """Features of ``series_ids`` from ``prices`` and the weather and covariate values dated
    ``read_from``..``as_of``."""
    wanted = set(series_ids)
    locations = {
        s.id: (s.weather.name if s.weather else None) for s in settings.series if s.id in wanted
    }
    weather = read_curated(
        settings.data_dir, schema.WEATHER, sorted({v for v in locations.values() if v}), as_of,
        read_from,
    )  # fmt: skip
    covariates = read_covariates(settings.data_dir, series_ids, as_of, start=read_from)
    computed = [calendar_covariates(settings, prices, as_of), weather_covariates(settings, weather)]
    covariates = covariate_frame([covariates, *computed])
    frequencies = settings.frequencies
    return build_features(
        prices, weather, locations, as_of, covariates, settings.feature_set, frequencies
    )


def changed_rows(
    feats: pd.DataFrame, settings: Settings, as_of: dt.date, start: dt.date | None = None
) -> pd.DataFrame:
    """The rows of ``feats`` (dated ``start``..``as_of``) that the stored features lack or hold
    with other values (NaN equals NaN); every row when the stored features lack one of its
    columns."""
    stored = read_dataset(
        paths.features_dir(settings.data_dir),
        filters={schema.SERIES_ID: sorted(feats[schema.SERIES_ID].astype(str).unique())},
        date_to=as_of,
        date_from=start,
    )
    return rows_not_in(feats, stored, list(schema.FEATURE_KEY))


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
    if _in_key_order(feats):  # as the files are read: no sorted copy of the whole history
        return feats
    return feats.sort_values(schema.FEATURE_KEY).reset_index(drop=True)


def _in_key_order(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` has a default index and is sorted by series, then strictly by date
    (what sorting and resetting the index would give)."""
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        return False
    ids = frame[schema.SERIES_ID].to_numpy()
    dates = frame[schema.DATE].to_numpy()
    same = ids[1:] == ids[:-1]
    return bool(np.all(ids[1:] >= ids[:-1]) and np.all(dates[1:][same] > dates[:-1][same]))
