"""Features are point-in-time correct and joined with the right weather."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.features import build_features


@pytest.fixture
def prices() -> pd.DataFrame:
    dates = pd.bdate_range("2015-01-01", periods=40)
    close = 100 + np.arange(40, dtype=float)
    a = pd.DataFrame(
        {
            "series_id": "A",
            "date": dates,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 1000.0,
        }
    )
    b = a.assign(series_id="B", volume=np.nan, high=np.nan, low=np.nan, open=np.nan)
    return pd.concat([a, b], ignore_index=True)


@pytest.fixture
def weather() -> pd.DataFrame:
    dates = pd.date_range("2015-01-01", periods=80)
    return pd.DataFrame(
        {
            "location": "x",
            "date": dates,
            "temp_max": np.arange(80.0),
            "temp_min": 0.0,
            "temp_mean": 1.0,
            "precipitation": 2.0,
            "wind_speed": 3.0,
        }
    )


def test_columns_and_values(prices: pd.DataFrame, weather: pd.DataFrame) -> None:
    f = build_features(prices, weather, {"A": "x", "B": None}, dt.date(2015, 2, 20))
    assert list(f.columns) == schema.FEATURE_COLUMNS
    a = f[f.series_id == "A"].set_index("date")
    day = pd.Timestamp("2015-01-02")
    assert a.loc[day, "y"] == 101 and a.loc[day, "log_return"] == pytest.approx(np.log(101 / 100))
    assert a.loc[day, "temp_max"] == 1.0  # the weather of the same day
    assert a.loc[day, "range_pct"] == pytest.approx(2 / 101)
    b = f[f.series_id == "B"]
    assert b["temp_max"].isna().all() and b["volume_log"].isna().all()  # no location, no volume


def test_point_in_time(prices: pd.DataFrame, weather: pd.DataFrame) -> None:
    as_of = dt.date(2015, 2, 3)
    before = build_features(prices, weather, {"A": "x", "B": "x"}, as_of)
    assert before["date"].max() == pd.Timestamp(as_of)
    changed = prices.copy()
    later = changed["date"] > pd.Timestamp(as_of)
    changed.loc[later, "close"] *= 10  # rewrite the future: must not change the past
    weather_changed = weather.assign(
        temp_max=np.where(weather["date"] > pd.Timestamp(as_of), 99.0, weather["temp_max"])
    )
    after = build_features(changed, weather_changed, {"A": "x", "B": "x"}, as_of)
    pd.testing.assert_frame_equal(before, after)


def test_inputs_unchanged(prices: pd.DataFrame, weather: pd.DataFrame) -> None:
    p0, w0 = prices.copy(), weather.copy()
    build_features(prices, weather, {"A": "x"}, dt.date(2015, 2, 20))
    pd.testing.assert_frame_equal(prices, p0)
    pd.testing.assert_frame_equal(weather, w0)
