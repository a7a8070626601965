"""Small synthetic feature frames for tests, benchmarks and demos of the model stage."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.model.calendar import calendar_features


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
) -> pd.DataFrame:
    """A features frame (``schema.FEATURE_COLUMNS``) of random walks, one per series.

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
    return pd.concat(frames, ignore_index=True)[schema.FEATURE_COLUMNS]
