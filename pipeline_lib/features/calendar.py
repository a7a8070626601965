"""Calendar encodings, known in advance for any date (so usable for target dates too), and the
target dates of a forecast."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline_lib.schema import CALENDAR_FEATURES


def calendar_features(dates: pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    """Cyclical day-of-week and month encodings, one row per date, columns CALENDAR_FEATURES."""
    idx = pd.DatetimeIndex(dates)
    dow = 2 * np.pi * idx.dayofweek.to_numpy() / 7
    month = 2 * np.pi * (idx.month.to_numpy() - 1) / 12
    out = pd.DataFrame(
        {
            "dow_sin": np.sin(dow),
            "dow_cos": np.cos(dow),
            "month_sin": np.sin(month),
            "month_cos": np.cos(month),
        }
    )
    return out[CALENDAR_FEATURES]


def future_dates(last: dt.date, horizon: int, frequency: str) -> pd.DatetimeIndex:
    """The ``horizon`` dates after ``last``: business days (``"B"``, pandas ``BDay``) or
    calendar days (``"D"``)."""
    if frequency not in ("B", "D"):
        raise ValueError(f"frequency must be 'B' or 'D', got {frequency!r}")
    start = pd.Timestamp(last)
    step = pd.offsets.BDay(1) if frequency == "B" else pd.offsets.Day(1)
    return pd.date_range(start + step, periods=horizon, freq=step).as_unit("ns")
