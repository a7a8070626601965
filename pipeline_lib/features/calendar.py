"""Calendar encodings: known in advance for any date, so usable for target dates too."""

from __future__ import annotations

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
