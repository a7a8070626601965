"""Calendar covariates of the dates ahead of a forecast.

The encodings themselves live in :mod:`pipeline_lib.features.calendar` (one definition for the
past rows the features stage builds and for the target dates here, so training and forecasting
can never disagree); this module adds the target dates of a forecast.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib.features.calendar import calendar_features

__all__ = ["calendar_features", "future_dates"]


def future_dates(last: dt.date, horizon: int, frequency: str) -> pd.DatetimeIndex:
    """The ``horizon`` dates after ``last``: business days (``"B"``, pandas ``BDay``) or
    calendar days (``"D"``)."""
    if frequency not in ("B", "D"):
        raise ValueError(f"frequency must be 'B' or 'D', got {frequency!r}")
    start = pd.Timestamp(last)
    step = pd.offsets.BDay(1) if frequency == "B" else pd.offsets.Day(1)
    return pd.date_range(start + step, periods=horizon, freq=step).as_unit("ns")
