"""The linear baseline with declared covariates: it uses a known-ahead covariate's lead, reads
it point in time, masks a missing lead, and the feature set travels through make_baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_lib.config import load_settings
from pipeline_lib.errors import ConfigError
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.backtest import FitWindows, make_baseline
from pipeline_lib.forecasting.linear_baseline import LinearLags, price_scale
from pipeline_lib.forecasting.naive import Naive

LOAD = FeatureSet.of(future=[("load", 1)])
ORIGIN = 450  # row of the origin in the point-in-time tests


def _planted(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """y_t = 50 + 10 x_t + 0.5 (y_{t-1} - 50) + noise, daily; ``load@1`` on row t is x_{t+1}."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n + 1)
    y = np.full(n, 50.0)
    for t in range(1, n):
        y[t] = 50 + 10 * x[t] + 0.5 * (y[t - 1] - 50) + rng.normal(0, 0.5)
    dates = pd.date_range("2022-01-01", periods=n, freq="D")
    return pd.DataFrame({"series_id": "A", "date": dates, "y": y, "load": x[:n], "load@1": x[1:]})


def _h1_error(model: LinearLags, frame: pd.DataFrame) -> float:
    bt = model.fit(frame).backtest(last_n=100, horizon=3, step=1, frequency="D")
    h1 = bt.loc[bt["horizon"] == 1]
    actual = frame.set_index("date")["y"].loc[h1["target_date"]].to_numpy()
    return float(np.abs(h1["yhat"].to_numpy() - actual).mean())


def _forecast_at(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    model = LinearLags(feature_set=LOAD).fit(frame)
    return model.predict(frame["date"].iloc[row].date(), 3, "D")


def test_a_known_ahead_covariate_cuts_the_h1_error() -> None:
    frame = _planted()
    with_leads = _h1_error(LinearLags(feature_set=LOAD), frame)
    without = _h1_error(LinearLags(), frame)
    assert with_leads < 0.3 * without
    assert with_leads < 1.0  # noise sd 0.5: about 0.4 mean absolute error


def test_leads_after_the_origin_change_nothing_and_the_origin_lead_is_read() -> None:
    frame = _planted()
    base = _forecast_at(frame, ORIGIN)
    later = frame.copy()
    later.loc[ORIGIN + 1 :, ["load", "load@1"]] += 5.0
    pd.testing.assert_frame_equal(_forecast_at(later, ORIGIN), base)
    moved = frame.copy()
    moved.loc[ORIGIN, "load@1"] += 1.0  # tomorrow's load, as known tonight
    shift = _forecast_at(moved, ORIGIN)["yhat"].to_numpy() - base["yhat"].to_numpy()
    assert shift[0] == pytest.approx(10.0, rel=0.25)  # the planted effect of x on y


def test_a_missing_lead_is_masked_not_made_up() -> None:
    frame = _planted()
    frame.loc[frame.index % 10 == 0, "load@1"] = np.nan  # some leads never arrived
    frame.loc[ORIGIN, "load@1"] = np.nan
    out = _forecast_at(frame, ORIGIN)
    assert len(out) == 3 and out["yhat"].notna().all()
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    imputer = LinearLags._model(1.0).steps[0][1]
    assert imputer.add_indicator


def test_the_feature_set_is_explicit_and_passed_by_make_baseline() -> None:
    frame = _planted()
    model = make_baseline("linear", (0.1, 0.5, 0.9), feature_set=LOAD)
    assert model.feature_set == LOAD
    assert model.fit(frame).covariate_columns == ["load", "load@1"]
    assert LinearLags().fit(frame).covariate_columns == []  # never guessed from the frame
    with pytest.raises(ValueError, match="load@1"):
        LinearLags(feature_set=LOAD).fit(frame.drop(columns="load@1"))
    naive = Naive(feature_set=LOAD).fit(frame[["series_id", "date", "y"]])  # y only
    assert len(naive.predict(frame["date"].iloc[-1].date(), 2, "D")) == 2


def test_lags_and_alpha_are_validated() -> None:
    assert LinearLags().lags == (1, 2, 7)
    assert LinearLags(lags=(7, 1, 1)).lags == (1, 7)
    with pytest.raises(ValueError, match="lags"):
        LinearLags(lags=(0, 1))
    with pytest.raises(ValueError, match="alpha"):
        LinearLags(alpha=0.0)


def test_a_fit_window_reads_only_its_newest_rows() -> None:
    frame = _planted()
    as_of = frame["date"].iloc[-1].date()  # origin 599, 596 training origins for horizon 3

    def forecast(data: pd.DataFrame, fit_rows: tuple[int, ...]) -> pd.DataFrame:
        model = LinearLags(feature_set=LOAD, fit_rows=fit_rows).fit(data)
        return model.predict(as_of, 3, "D")

    # window 100: the calibration fit reads training origins 245..344 (the 250 before the
    # origin's are its calibration errors), their lags from row 238; the origin's fit 497..596
    older = frame.copy()
    older.loc[:200, ["y", "load", "load@1"]] *= 1.5
    windowed = forecast(frame, (100,))
    pd.testing.assert_frame_equal(forecast(older, (100,)), windowed)
    assert not np.allclose(forecast(older, (0,))["yhat"], forecast(frame, (0,))["yhat"])
    # several windows: the mean of their changes (log prices: the geometric mean of points)
    both = forecast(frame, (100, 0))["yhat"].to_numpy()
    whole = forecast(frame, (0,))["yhat"].to_numpy()
    np.testing.assert_allclose(both, np.sqrt(windowed["yhat"].to_numpy() * whole), rtol=1e-12)


def test_a_fit_window_too_short_is_refused() -> None:
    with pytest.raises(ValueError, match="fit_rows must be 0"):
        LinearLags(fit_rows=(10,))
    with pytest.raises(ConfigError, match="linear_fit_rows"):
        load_settings(backtest={"linear_fit_rows": [0, 30]})
    windows = load_settings(backtest={"linear_fit_rows": [1820, 0, 1820]}).backtest
    assert FitWindows.of(windows).linear == (0, 1820)


def test_prices_at_or_below_zero_are_read_on_a_centred_asinh_scale() -> None:
    positive = np.array([40.0, 42.0, 39.5, 45.0])
    z, inverse = price_scale(positive)
    np.testing.assert_allclose(z, np.log(positive))  # while every price is positive: log
    rng = np.random.default_rng(5)
    y = 30 + 15 * rng.standard_t(3, 400)  # spikes, some prices below zero
    y[390] = -20.0
    z, inverse = price_scale(y, 56)
    np.testing.assert_allclose(inverse(z), y, rtol=1e-9)
    recent = y[-56:]
    m = np.median(recent)
    s = 1.4826 * np.median(np.abs(recent - m))
    np.testing.assert_allclose(z, np.arcsinh((y - m) / s))  # the newest 56 prices set m and s
    older = y.copy()
    older[:300] *= 3.0  # rows before the newest 56 do not move the scale
    np.testing.assert_allclose(price_scale(older, 56)[0][-100:], z[-100:])
    flat = np.r_[y[:300], np.zeros(100)]  # a window of zero prices: the std, not a zero MAD
    assert np.isfinite(price_scale(flat, 56)[0]).all()
    frame = pd.DataFrame(
        {"series_id": "A", "date": pd.date_range("2022-01-01", periods=400, freq="D"), "y": y}
    )
    out = LinearLags().fit(frame).predict(frame["date"].iloc[-1].date(), 5, "D")
    assert len(out) == 5 and np.isfinite(out[["yhat", "yhat_lower", "yhat_upper"]]).all().all()
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    with pytest.raises(ValueError, match="asinh_rows"):
        LinearLags(asinh_rows=-1)
