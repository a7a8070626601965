"""Feature building, point-in-time correct: a row dated t uses only data dated on or before t.

Input: curated prices and weather (long format); output: one row per (series_id, date) with the
target ``y``, past covariates and calendar features (schema.FEATURE_COLUMNS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline_lib.features.calendar import calendar_features
from pipeline_lib.features.covariates import add_covariates
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.schema import (
    DATE,
    FEATURE_COLUMNS,
    LOCATION,
    SERIES_ID,
    TARGET,
    WEATHER_VALUES,
    Y,
)


def price_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Target, returns, volume and rolling statistics per series; backward-looking windows only."""
    df = prices.sort_values([SERIES_ID, DATE]).reset_index(drop=True)
    by_series = df.groupby(SERIES_ID, sort=False)
    y = df[TARGET].astype("float64")
    ratio = y / by_series[TARGET].shift(1)
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero or negative price: no log
        log_return = np.log(ratio.where(ratio > 0))
    returns = log_return.groupby(df[SERIES_ID], sort=False)
    mean_28 = _per_series(by_series[TARGET].rolling(28, min_periods=1).mean())
    return_7 = returns.rolling(7, min_periods=2)
    return pd.DataFrame(
        {
            SERIES_ID: df[SERIES_ID],
            DATE: df[DATE],
            Y: y,
            "log_return": log_return,
            "volume_log": np.log1p(df["volume"].astype("float64")),
            "range_pct": (df["high"] - df["low"]) / y,
            "return_mean_7": _per_series(return_7.mean()),
            "return_std_7": _per_series(return_7.std()),
            "price_to_mean_28": y / mean_28 - 1,
        }
    )


def _per_series(rolled: pd.Series) -> pd.Series:
    """A grouped rolling statistic back on the frame's own index (one Cython pass over every
    series, no Python function per series)."""
    return rolled.reset_index(level=0, drop=True).sort_index()


def build_features(
    prices: pd.DataFrame,
    weather: pd.DataFrame,
    series_locations: dict[str, str | None],
    as_of: dt.date,
    covariates: pd.DataFrame | None = None,
    feature_set: FeatureSet | None = None,
    frequencies: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Features for every series in ``series_locations`` from data dated on or before ``as_of``.

    ``series_locations`` maps a series id to the weather location it is joined with (or None:
    its weather columns stay empty). Weather of day t is joined to the price of day t.
    ``covariates`` (values as issued, long) give the ``feature_set``'s columns: each row sees
    only values issued on or before its date (see :mod:`pipeline_lib.features.covariates`);
    ``frequencies`` are the series' calendars for the lead dates.
    """
    cutoff = pd.Timestamp(as_of)
    prices = prices[(prices[DATE] <= cutoff) & prices[SERIES_ID].isin(list(series_locations))]
    weather = weather[weather[DATE] <= cutoff]
    feats = price_features(prices)
    feats[LOCATION] = feats[SERIES_ID].map(series_locations)
    feats = feats.merge(weather[[LOCATION, DATE, *WEATHER_VALUES]], on=[LOCATION, DATE], how="left")
    calendar = calendar_features(feats[DATE])
    feats[calendar.columns] = calendar.to_numpy()
    out = feats[FEATURE_COLUMNS].sort_values([SERIES_ID, DATE]).reset_index(drop=True)
    numbers = out.columns.drop([SERIES_ID, DATE])
    out[numbers] = out[numbers].astype("float64").replace([np.inf, -np.inf], np.nan)
    if feature_set is not None and feature_set.covariate_names:
        values = covariates if covariates is not None else pd.DataFrame()
        out = add_covariates(out, values, feature_set, frequencies or {})
    return out
