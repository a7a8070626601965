"""Small synthetic feature frames for tests, benchmarks and demos of the model stage."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.features.calendar import calendar_features
from pipeline_lib.features.spec import FeatureSet, lead_column


def random_walk_features(
    n_series: int = 2,
    n_days: int = 300,
    start: dt.date = dt.date(2020, 1, 1),
    frequency: str = "B",
    seed: int = 0,
    weekly_signal: float = 0.0,
    shift_series: tuple[int, ...] = (),
    shift_from: dt.date | None = None,
    shift_mean: float = 0.0,
    feature_set: FeatureSet | None = None,
) -> pd.DataFrame:
    """A features frame (``schema.FEATURE_COLUMNS``) of random walks, one per series.

    ``feature_set``: the frame has its columns (``feature_set.columns``), the covariates' own
    and lead columns all NaN (unknown), as for series that do not declare them.

    ``weekly_signal`` adds a learnable day-of-week pattern to the returns. The first series has
    no weather and no volume (all NaN), like a close-only series without a location. A planted
    drift: the series numbered in ``shift_series`` get ``shift_mean`` added to their daily log
    returns (std 0.01) from ``shift_from`` on; the draws are the same as without it.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(pd.Timestamp(start), periods=n_days, freq=frequency).as_unit("ns")
    cal = calendar_features(dates)
    frames = []
    for i in range(n_series):
        steps = rng.normal(0, 0.01, n_days) + weekly_signal * cal["dow_sin"].to_numpy()
        if i in shift_series and shift_from is not None:
            steps = steps + shift_mean * (dates >= pd.Timestamp(shift_from))
        y = 100.0 * (i + 1) * np.exp(np.cumsum(steps))
        frame = pd.DataFrame({schema.SERIES_ID: f"S{i}", schema.DATE: dates, schema.Y: y})
        close = pd.Series(y)
        log_return = np.log(close).diff()
        frame["log_return"] = log_return.to_numpy()
        frame["volume_log"] = rng.normal(15, 1, n_days)
        frame["range_pct"] = np.abs(rng.normal(0, 0.01, n_days))
        frame["return_mean_7"] = log_return.rolling(7, min_periods=2).mean().to_numpy()
        frame["return_std_7"] = log_return.rolling(7, min_periods=2).std().to_numpy()
        frame["price_to_mean_28"] = (close / close.rolling(28, min_periods=1).mean() - 1).to_numpy()
        temp = 10 + 8 * np.sin(2 * np.pi * np.arange(n_days) / 365) + rng.normal(0, 2, n_days)
        frame["temp_max"], frame["temp_min"], frame["temp_mean"] = temp + 4, temp - 4, temp
        frame["precipitation"] = rng.exponential(2, n_days)
        frame["wind_speed"] = rng.gamma(2, 2, n_days)
        for name in schema.PAST_FEATURES:  # any covariate added to the schema later: noise
            if name not in frame:
                frame[name] = rng.normal(0, 1, n_days)
        if i == 0:
            frame[["volume_log", "range_pct", *schema.WEATHER_VALUES]] = np.nan
        frames.append(pd.concat([frame, cal], axis=1))
    out = pd.concat(frames, ignore_index=True)[schema.FEATURE_COLUMNS]
    if feature_set is None:
        return out
    extra = [c for c in feature_set.columns if c not in out]
    return pd.concat([out, pd.DataFrame(np.nan, index=out.index, columns=extra)], axis=1)


def covariate_features(
    n_series: int = 2,
    n_days: int = 300,
    start: dt.date = dt.date(2020, 1, 1),
    frequency: str = "B",
    seed: int = 0,
    name: str = "x",
    known_ahead: int = 2,
    coef: float = 2.0,
    ar: float = 0.3,
    noise: float = 0.1,
    missing: float = 0.0,
) -> pd.DataFrame:
    """A features frame whose ``y`` is driven by a known-ahead covariate ``name``.

    Per series, ``x_t`` ~ N(0, 1) i.i.d. and ``y_t = level + z_t`` with
    ``z_t = ar * z_{t-1} + coef * x_t + noise * e_t``: the next value of ``y`` is mostly the
    next value of ``x``, unpredictable from the past alone. Row ``t`` holds ``x_t`` in column
    ``name`` and ``x_{t+h}`` in the lead column ``name@h`` (h = 1..known_ahead; the draws run
    past the last row, so the leads of the last rows are known too); a fraction ``missing`` of
    the lead values is NaN (not issued). Columns: ``FeatureSet.of(future=[(name,
    known_ahead)]).columns``; the price features follow ``y``, volume and weather are NaN.
    """
    feature_set = FeatureSet.of(future=[(name, known_ahead)])
    rng = np.random.default_rng(seed)
    dates = pd.date_range(pd.Timestamp(start), periods=n_days, freq=frequency).as_unit("ns")
    cal = calendar_features(dates)
    frames = []
    for i in range(n_series):
        x = rng.normal(0, 1, n_days + known_ahead)
        shocks = rng.normal(0, noise, n_days)
        z = np.zeros(n_days)
        for t in range(n_days):
            z[t] = ar * (z[t - 1] if t else 0.0) + coef * x[t] + shocks[t]
        y = 100.0 * (i + 1) + z
        frame = pd.DataFrame({schema.SERIES_ID: f"S{i}", schema.DATE: dates, schema.Y: y})
        close = pd.Series(y)
        log_return = np.log(close).diff()
        frame["log_return"] = log_return.to_numpy()
        frame["return_mean_7"] = log_return.rolling(7, min_periods=2).mean().to_numpy()
        frame["return_std_7"] = log_return.rolling(7, min_periods=2).std().to_numpy()
        frame["price_to_mean_28"] = (close / close.rolling(28, min_periods=1).mean() - 1).to_numpy()
        for column in schema.PAST_FEATURES:
            if column not in frame:
                frame[column] = np.nan
        frame[name] = x[:n_days]
        for h in range(1, known_ahead + 1):
            lead = x[h : h + n_days].copy()
            lead[rng.random(n_days) < missing] = np.nan
            frame[lead_column(name, h)] = lead
        frames.append(pd.concat([frame, cal], axis=1))
    return pd.concat(frames, ignore_index=True)[feature_set.columns]
