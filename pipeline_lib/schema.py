"""Column names and data-set layouts, named once (long format: one row per key and date)."""

from __future__ import annotations

import pandas as pd

SERIES_ID = "series_id"
LOCATION = "location"
DATE = "date"

# Curated prices: one row per (series_id, date). open/high/low/volume may be null for
# close-only sources (e.g. a commodity spot price).
PRICE_VALUES = ["open", "high", "low", "close", "volume"]
PRICE_COLUMNS = [SERIES_ID, DATE, *PRICE_VALUES]
PRICE_KEY = [SERIES_ID, DATE]
TARGET = "close"

# Curated weather: one row per (location, date), daily aggregates in metric units.
WEATHER_VALUES = ["temp_max", "temp_min", "temp_mean", "precipitation", "wind_speed"]
WEATHER_COLUMNS = [LOCATION, DATE, *WEATHER_VALUES]
WEATHER_KEY = [LOCATION, DATE]

# Features: one row per (series_id, date), built from data dated on or before that date.
Y = "y"  # the target value (close) on that date
# A scored backtest row's series MASE scale (scaled_error = abs_error / it, where positive):
# the evaluation's rows carry it, the SQL store of a night's backtest keeps it per series.
MASE_SCALE = "mase_scale"
PAST_FEATURES = [
    "log_return",
    "volume_log",
    "range_pct",
    "return_mean_7",  # mean of log returns over the last 7 observations
    "return_std_7",  # their standard deviation (realised volatility)
    "price_to_mean_28",  # y / mean of y over the last 28 observations - 1 (momentum)
    "temp_max",
    "temp_min",
    "temp_mean",
    "precipitation",
    "wind_speed",
]
# Known in advance for any date: calendar encodings.
CALENDAR_FEATURES = ["dow_sin", "dow_cos", "month_sin", "month_cos"]
FEATURE_COLUMNS = [SERIES_ID, DATE, Y, *PAST_FEATURES, *CALENDAR_FEATURES]
FEATURE_KEY = [SERIES_ID, DATE]

# Curated covariates (pipeline_lib.features.spec): one row per value as issued, long format.
# ``date`` is the day the value is for, ``issued`` the day it was known (a day-ahead forecast
# for d is issued on d - 1); a run for as-of t reads only rows issued on or before t.
COVARIATE = "covariate"
ISSUED = "issued"
VALUE = "value"
COVARIATE_COLUMNS = [SERIES_ID, COVARIATE, DATE, ISSUED, VALUE]
COVARIATE_KEY = [SERIES_ID, COVARIATE, DATE, ISSUED]
COVARIATE_DTYPES = {
    SERIES_ID: "str",
    COVARIATE: "str",
    DATE: "datetime64[ns]",
    ISSUED: "datetime64[ns]",
    VALUE: "float64",
}

# A forecast row (the LSTM's, a baseline's, the published one's; the SQL table adds ``model``):
# one per series, forecast date and target date, the median and the band's outer quantiles.
FORECAST_COLUMNS = [
    SERIES_ID,
    "forecast_date",
    "target_date",
    "horizon",
    "yhat",
    "yhat_lower",
    "yhat_upper",
]

# Data-set names used for folders, suites and reports.
PRICES = "prices"
WEATHER = "weather"
FEATURES = "features"
COVARIATES = "covariates"


def dated_up_to(frame: pd.DataFrame, as_of: object) -> pd.DataFrame:
    """The rows of ``frame`` dated on or before ``as_of``: ``frame`` itself, not a copy, when
    none is later (a night's features are read up to its date), so treat it as read-only."""
    dates = frame[DATE]
    cutoff = pd.Timestamp(as_of)
    if dates.empty or dates.max() <= cutoff:
        return frame
    return frame.loc[dates <= cutoff]
