"""Feature building, point-in-time correct: a row dated t uses only data dated on or before t.

Input: curated prices and weather (long format); output: one row per (series_id, date) with the
target ``y``, past covariates and calendar features (schema.FEATURE_COLUMNS).

A row reads at most ``LOOKBACK_ROWS`` rows of its series before it, and every rolling
statistic is computed over its own window alone (not as pandas' running sums, whose rounding
carries from the first row on), so the features of rows from a date on, built from the
``LOOKBACK_ROWS`` rows before it onwards, equal to the last bit those of a build from the
series' first row: the features stage rebuilds only from the earliest changed day.
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

MEAN_WINDOW, RETURN_WINDOW = 28, 7  # rows of the price mean and of the return statistics
LOOKBACK_ROWS = max(MEAN_WINDOW - 1, RETURN_WINDOW)  # rows before a row that its features read
FEATURES_VERSION = 2  # bump when a built-in feature's computation changes: stored ones rebuild
_CHUNK = 1 << 18  # rows per block of windows (a block holds [rows, window] floats)


def price_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Target, returns, volume and rolling statistics per series; backward-looking windows only."""
    df = prices.sort_values([SERIES_ID, DATE]).reset_index(drop=True)
    codes = pd.factorize(df[SERIES_ID])[0]
    first = _first_rows(codes)  # [N] index of each row's series' first row
    y = df[TARGET].to_numpy("float64")
    previous = np.full(len(y), np.nan)
    previous[1:] = y[:-1]
    previous[first == np.arange(len(y))] = np.nan  # a series' first row has no previous one
    ratio = y / previous
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero or negative price: no log
        log_return = np.log(np.where(ratio > 0, ratio, np.nan))
    mean_28, _ = _rolling(y, first, MEAN_WINDOW, min_periods=1)
    return_mean, return_std = _rolling(log_return, first, RETURN_WINDOW, min_periods=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                SERIES_ID: df[SERIES_ID],
                DATE: df[DATE],
                Y: y,
                "log_return": log_return,
                "volume_log": np.log1p(df["volume"].to_numpy("float64")),
                "range_pct": (df["high"] - df["low"]).to_numpy("float64") / y,
                "return_mean_7": return_mean,
                "return_std_7": return_std,
                "price_to_mean_28": y / mean_28 - 1,
            }
        )


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """For rows sorted by series (``codes``: the series of each row), the index of the first
    row of each row's series."""
    n = len(codes)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.array([], int)
    return np.repeat(starts, np.diff(np.r_[starts, n]))


def _rolling(
    x: np.ndarray, first: np.ndarray, window: int, min_periods: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof 1) of each row's last ``window`` values of its
    own series (``first``: its series' first row), NaN skipped; NaN where fewer than
    ``min_periods`` values are there. Each window is summed on its own, so a row's statistics
    do not depend on where the computation started."""
    n = len(x)
    mean, std = np.full(n, np.nan), np.full(n, np.nan)
    padded = np.r_[np.full(window - 1, np.nan), x]
    views = np.lib.stride_tricks.sliding_window_view(padded, window)  # [N, window], row i ends at i
    offsets = np.arange(window) - (window - 1)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        rows = np.arange(lo, hi)
        block = views[lo:hi].copy()
        block[(rows[:, None] + offsets[None, :]) < first[lo:hi, None]] = np.nan  # other series
        seen = ~np.isnan(block)
        count = seen.sum(axis=1)
        total = np.where(seen, block, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = total / count
            squares = np.where(seen, (block - m[:, None]) ** 2, 0.0).sum(axis=1)
            s = np.sqrt(squares / (count - 1))
        enough = count >= min_periods
        mean[lo:hi] = np.where(enough, m, np.nan)
        std[lo:hi] = np.where(enough & (count >= 2), s, np.nan)
    return mean, std


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
