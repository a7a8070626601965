"""Exchange calendars (exchange_calendars): a business-day series with ``calendar = "XNYS"`` is
forecast on the exchange's sessions, so 2016-01-01 (New Year's Day) is never a target date."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig, load_settings
from pipeline_lib.errors import ConfigError
from pipeline_lib.features.calendar import dates_ahead, future_dates, weekly_season
from pipeline_lib.features.covariates import add_covariates, missing_covariates
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.ets_arima import ETS
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.naive import Naive, SeasonalNaive

NEW_YEARS_EVE = dt.date(2015, 12, 31)  # a Thursday; Friday 2016-01-01 is an NYSE holiday
AFTER = ["2016-01-04", "2016-01-05", "2016-01-06"]
FREQ = {"S0": "XNYS", "S1": "B"}


def _days(dates: pd.Series | pd.DatetimeIndex) -> list[str]:
    return list(pd.DatetimeIndex(dates).strftime("%Y-%m-%d"))


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return random_walk_features(n_series=2, n_days=260, start=dt.date(2015, 1, 2))


def test_the_sessions_after_new_years_eve_skip_new_years_day() -> None:
    assert _days(future_dates(NEW_YEARS_EVE, 3, "XNYS")) == AFTER
    assert _days(future_dates(NEW_YEARS_EVE, 3, "B")) == ["2016-01-01", *AFTER[:2]]
    # Thanksgiving (Thursday) and Christmas: horizon sessions can span more than 2 x horizon days
    assert _days(future_dates(dt.date(2015, 11, 25), 2, "XNYS")) == ["2015-11-27", "2015-11-30"]
    assert weekly_season("XNYS") == weekly_season("B") == 5 and weekly_season("D") == 7


def test_dates_outside_the_calendar_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="exchange calendar XNYS: 14 sessions after 2099-01-01"):
        future_dates(dt.date(2099, 1, 1), 14, "XNYS")
    with pytest.raises(ValueError, match="an exchange calendar code"):
        future_dates(NEW_YEARS_EVE, 3, "W")


def test_a_forecast_follows_the_calendar(features: pd.DataFrame) -> None:
    model = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, dropout=0.0)
    train = TrainingConfig(max_epochs=1, batch_size=64, train_window_days=365)
    trained = train_full(features, model, train, 3, dt.date(2015, 11, 30))
    out = predict(trained, features, NEW_YEARS_EVE, FREQ)
    by_series = out.groupby(schema.SERIES_ID)["target_date"]
    assert _days(by_series.get_group("S0")) == AFTER
    assert _days(by_series.get_group("S1"))[0] == "2016-01-01"  # pandas BDay


@pytest.mark.parametrize("baseline", [Naive, SeasonalNaive])
def test_a_baselines_target_dates_follow_the_calendar(features: pd.DataFrame, baseline) -> None:
    out = baseline(quantiles=(0.1, 0.5, 0.9)).fit(features).predict(NEW_YEARS_EVE, 3, FREQ)
    by_series = out.groupby(schema.SERIES_ID)["target_date"]
    assert _days(by_series.get_group("S0")) == AFTER
    assert _days(by_series.get_group("S1"))[0] == "2016-01-01"


def test_a_statistical_baseline_follows_the_calendar_and_shares_its_fit(
    features: pd.DataFrame,
) -> None:
    model = ETS(quantiles=(0.1, 0.5, 0.9)).at(dt.date(2015, 11, 30)).fit(features)
    on_xnys = model.predict(NEW_YEARS_EVE, 3, "XNYS")
    assert set(on_xnys[schema.SERIES_ID]) == {"S0", "S1"}
    assert _days(on_xnys.loc[on_xnys[schema.SERIES_ID] == "S0", "target_date"]) == AFTER
    on_bday = model.predict(NEW_YEARS_EVE, 3, "B")  # the same fit: only the dates differ
    np.testing.assert_allclose(on_bday["yhat"], on_xnys["yhat"])


def test_a_covariate_lead_follows_the_calendar() -> None:
    fs = FeatureSet.of(future=[("load", 4)])
    feats = pd.DataFrame({schema.SERIES_ID: "A", schema.DATE: pd.to_datetime([NEW_YEARS_EVE])})
    days = pd.date_range("2016-01-01", "2016-01-06")
    values = pd.DataFrame(
        {
            schema.SERIES_ID: "A",
            schema.COVARIATE: "load",
            schema.DATE: days,
            schema.ISSUED: pd.Timestamp(NEW_YEARS_EVE),
            schema.VALUE: np.arange(1.0, len(days) + 1),  # 1.0 for 01-01 ... 6.0 for 01-06
        }
    )[schema.COVARIATE_COLUMNS]
    xnys = add_covariates(feats, values, fs, {"A": "XNYS"})
    assert xnys.loc[0, "load@1"] == 4.0  # the value for Monday 2016-01-04, four days ahead
    assert xnys[["load@2", "load@3", "load@4"]].isna().all(axis=None)  # beyond known_ahead
    bday = add_covariates(feats, values, fs, {"A": "B"})
    assert bday.loc[0, "load@1"] == 1.0 and bday.loc[0, "load@2"] == 4.0
    # the missing-covariate check asks for the sessions only: New Year's Day is not needed
    declared = {"A": {"load": ("future", 4, "required")}}
    lacking = missing_covariates(
        feats.assign(**{"load@1": np.nan}), declared, {"A": "XNYS"}, NEW_YEARS_EVE
    )
    assert [m.dates for m in lacking] == [(dt.date(2016, 1, 4),)]


def test_the_calendar_is_checked_at_config_load() -> None:
    with pytest.raises(ConfigError, match="unknown exchange calendar 'XNYZ'.*get_calendar_names"):
        load_settings(series=[{"id": "SPX", "calendar": "XNYZ"}])
    with pytest.raises(ConfigError, match="calendar 'XNYS' needs frequency 'B', got 'D'"):
        load_settings(series=[{"id": "SPX", "frequency": "D", "calendar": "XNYS"}])
    settings = load_settings(series=[{"id": "SPX", "calendar": "XLON"}, {"id": "GAS"}])
    assert settings.frequencies == {"SPX": "XLON", "GAS": "B"}


def test_the_bundled_stocks_use_the_nyse_sessions() -> None:
    assert set(load_settings().frequencies.values()) == {"XNYS"}


def test_business_days_ahead_are_pandas_bday_steps() -> None:
    """``"B"`` steps come from NumPy's business days at midnight; they are pandas' ``BDay``
    steps for every weekday and weekend date (a weekend rolls to Monday), NaT included; a time
    of day is kept (pandas' path)."""
    days = pd.date_range("2023-12-20", "2024-03-10", freq="D").to_numpy().astype("datetime64[ns]")
    days = np.append(days, np.datetime64("NaT", "ns"))
    index = pd.DatetimeIndex(days)
    want = np.stack([(index + pd.offsets.BDay(h)).to_numpy() for h in range(1, 15)], axis=1)
    got = dates_ahead(days, 14, "B")
    assert got.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(got, want.astype("datetime64[ns]"))
    noon = days[:3] + np.timedelta64(12, "h")
    assert pd.Timestamp(dates_ahead(noon, 1, "B")[0, 0]) == pd.Timestamp("2023-12-21 12:00")
