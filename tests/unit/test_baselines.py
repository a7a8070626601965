"""Baselines: exact naive values, a linear model that learns an AR process, calibrated bands,
no leakage, determinism."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline_lib.forecasting.linear_baseline import LinearLags
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.naive import Naive, SeasonalNaive


def _series(y: np.ndarray, start: str = "2024-01-01", freq: str = "B") -> pd.DataFrame:
    dates = pd.date_range(start, periods=len(y), freq=freq)
    return pd.DataFrame({"series_id": "A", "date": dates, "y": y})


TOY = _series(100.0 + np.arange(40) % 5 + np.arange(40) * 0.1)  # weekly pattern + trend
AS_OF = TOY["date"].iloc[-1].date()  # a Friday


def test_naive_exact_values_and_shape() -> None:
    out = Naive(min_calibration=5).fit(TOY).predict(AS_OF, 3, "B")
    assert list(out.columns) == [
        "series_id", "forecast_date", "target_date", "horizon",
        "yhat", "yhat_lower", "yhat_upper", "model",
    ]  # fmt: skip
    assert (out["yhat"] == TOY["y"].iloc[-1]).all() and (out["model"] == "naive").all()
    assert out["target_date"].dt.strftime("%a").tolist() == ["Mon", "Tue", "Wed"]
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()


def test_seasonal_naive_repeats_last_week() -> None:
    y = TOY["y"].to_numpy()
    out = SeasonalNaive(min_calibration=5).fit(TOY).predict(AS_OF, 7, "B")
    expected = np.r_[y[-5:], y[-5:-3]]  # 5 business days back, then the week again
    np.testing.assert_allclose(out["yhat"], expected)
    daily = SeasonalNaive(min_calibration=5).fit(_series(y, freq="D"))
    d_out = daily.predict(pd.Timestamp("2024-01-01").date() + dt.timedelta(39), 2, "D")
    np.testing.assert_allclose(d_out["yhat"], y[-7:-5])  # 7 calendar days back


def test_backtest_matches_predict_at_each_origin() -> None:
    model = SeasonalNaive(min_calibration=5).fit(TOY)
    backtest = model.backtest(last_n=4, horizon=3, step=2)
    assert backtest["forecast_date"].nunique() == 4
    for date, rows in backtest.groupby("forecast_date"):
        alone = model.predict(date.date(), 3, "B")
        np.testing.assert_allclose(rows[["yhat", "yhat_lower", "yhat_upper"]], alone.iloc[:, 4:7])


def test_linear_recovers_an_ar_process() -> None:
    rng = np.random.default_rng(1)
    x = np.zeros(800)
    for t in range(2, len(x)):
        x[t] = 0.6 * x[t - 1] - 0.3 * x[t - 2] + rng.normal(0, 0.01)
    history = _series(np.exp(4.0 + x))  # log y follows the AR(2)
    model = LinearLags(lags=(1, 2), alpha=0.1).fit(history)
    bt = model.backtest(last_n=40, horizon=2, step=5)
    z = np.log(history.set_index("date")["y"])
    origin = z.loc[bt["forecast_date"]].to_numpy()
    before = z.shift(1).loc[bt["forecast_date"]].to_numpy()
    ar1 = 0.6 * (origin - 4.0) - 0.3 * (before - 4.0)
    ar2 = 0.6 * ar1 - 0.3 * (origin - 4.0)
    truth = np.exp(4.0 + np.where(bt["horizon"] == 1, ar1, ar2))  # the conditional mean
    gap = np.abs(bt["yhat"].to_numpy() / truth - 1)
    naive_gap = np.abs(np.exp(origin) / truth - 1)
    assert gap.mean() < 0.0015 and gap.max() < 0.006  # noise sd is 0.01
    assert gap.mean() < 0.2 * naive_gap.mean()


def test_bands_cover_nominal_share_and_widen_on_a_random_walk() -> None:
    rng = np.random.default_rng(7)
    walk = _series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3000))))
    model = Naive(calibration_window=500).fit(walk)
    bt = model.backtest(last_n=2400, horizon=5, step=1)
    actual = walk.set_index("date")["y"]
    rows = bt.loc[bt["target_date"].isin(actual.index)]
    y = actual.loc[rows["target_date"]].to_numpy()
    inside = (y >= rows["yhat_lower"].to_numpy()) & (y <= rows["yhat_upper"].to_numpy())
    assert inside.mean() == pytest.approx(0.8, abs=0.03)
    width = (rows["yhat_upper"] - rows["yhat_lower"]).groupby(rows["horizon"]).mean()
    assert width.is_monotonic_increasing and width[5] > 2 * width[1]


@pytest.mark.parametrize("model", [Naive(), SeasonalNaive(), LinearLags(lags=(1, 2, 3, 4))])
def test_no_leakage_rows_after_as_of_change_nothing(model) -> None:
    features = random_walk_features(n_series=2, n_days=200)
    as_of = dt.date(2020, 8, 14)
    changed = features.copy()
    later = changed["date"] > pd.Timestamp(as_of)
    changed.loc[later, ["y", "log_return", "temp_mean"]] *= -3.0
    before = model.fit(features).predict(as_of, 5, "B")
    after = type(model)(**_params(model)).fit(changed).predict(as_of, 5, "B")
    truncated = type(model)(**_params(model)).fit(features.loc[~later]).predict(as_of, 5, "B")
    assert len(before) == 10
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_frame_equal(before, truncated)


def test_deterministic() -> None:
    features = random_walk_features(n_series=2, n_days=150)
    runs = [
        LinearLags(lags=(1, 2, 3, 4)).fit(features).backtest(last_n=3, horizon=4) for _ in range(2)
    ]
    pd.testing.assert_frame_equal(*runs)


def test_short_history_gets_no_forecast() -> None:
    out = Naive().fit(TOY.head(10)).predict(TOY["date"].iloc[9].date(), 3, "B")
    assert out.empty and list(out.columns)[-1] == "model"


def _params(model) -> dict:
    return {"lags": model.lags} if isinstance(model, LinearLags) else {}


def test_fit_keeps_each_series_in_date_order_and_rejects_duplicates() -> None:
    a = _series(np.arange(6.0))
    b = _series(10 + np.arange(4.0)).assign(series_id="B")
    shuffled = pd.concat([b, a], ignore_index=True).sample(frac=1.0, random_state=0)
    dropped = shuffled.iloc[0]
    shuffled.loc[shuffled.index[0], "y"] = np.nan  # a row without y is dropped
    model = Naive().fit(shuffled)
    assert list(model.series) == ["A", "B"]
    for sid, frame in (("A", a), ("B", b)):
        want = frame.loc[~((frame["series_id"] == dropped["series_id"]) &
                           (frame["date"] == dropped["date"]))]  # fmt: skip
        s = model.series[sid]
        np.testing.assert_array_equal(s.dates, want["date"].to_numpy().astype("datetime64[ns]"))
        np.testing.assert_array_equal(s.y, want["y"].to_numpy())
        assert s.covariates.shape == (len(want), 0)
    with pytest.raises(ValueError, match="more than one row for a"):
        Naive().fit(pd.concat([a, a.tail(1)], ignore_index=True))


def test_bands_of_whole_windows_at_once_equal_each_origin_alone() -> None:
    """The error quantiles of the origins with a whole calibration window, taken in one call,
    are those of each origin's window alone, to the last bit; shorter windows (down to
    ``min_calibration``) and too short ones (NaN) as before."""
    model = Naive(calibration_window=30, min_calibration=5)
    rng = np.random.default_rng(4)
    errors = rng.standard_normal((80, 3))
    errors[rng.random(errors.shape) < 0.02] = np.nan
    available = np.arange(80) + 3
    origins = np.arange(0, 90, 3)
    lo, hi = model._bands(errors, available, origins)
    for i, k in enumerate(np.searchsorted(available, origins, side="right")):
        recent = errors[max(0, k - 30) : k]
        if len(recent) < 5:
            assert np.isnan(lo[i]).all() and np.isnan(hi[i]).all()
            continue
        want = np.quantile(recent, [0.1, 0.9], axis=0)
        np.testing.assert_array_equal(np.stack([lo[i], hi[i]]), want)
