"""Forecasting: only rows on or before the forecast date are used, target dates follow the
series' frequency, values come back as prices."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.forecasting.model import forecast as forecast_module
from pipeline_lib.forecasting.model.forecast import predict, predict_at, readable_rows
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.schema import FORECAST_COLUMNS

AS_OF = dt.date(2020, 10, 30)  # a Friday
FREQ = {"S0": "B", "S1": "D"}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return random_walk_features(n_series=2, n_days=260)


@pytest.fixture(scope="module")
def trained(features: pd.DataFrame) -> TrainedModel:
    model = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, dropout=0.0)
    train = TrainingConfig(max_epochs=2, batch_size=64, train_window_days=365)
    return train_full(features, model, train, 4, dt.date(2020, 9, 30))


def test_forecast_uses_no_rows_after_as_of(trained: TrainedModel, features: pd.DataFrame) -> None:
    # Risk guarded: leakage. Rows after as_of, even wild ones, must not change the forecast.
    base = predict(trained, features[features[schema.DATE] <= pd.Timestamp(AS_OF)], AS_OF, FREQ)
    tampered = features.copy()
    later = tampered[schema.DATE] > pd.Timestamp(AS_OF)
    tampered.loc[later, schema.Y] = 1e6
    pd.testing.assert_frame_equal(predict(trained, features, AS_OF, FREQ), base, check_exact=True)
    pd.testing.assert_frame_equal(predict(trained, tampered, AS_OF, FREQ), base, check_exact=True)


def test_forecast_frame_dates_and_order(trained: TrainedModel, features: pd.DataFrame) -> None:
    out = predict(trained, features, AS_OF, FREQ)
    assert list(out.columns) == FORECAST_COLUMNS and len(out) == 2 * 4
    assert (out["forecast_date"] == pd.Timestamp(AS_OF)).all()
    assert out["horizon"].tolist() == [1, 2, 3, 4] * 2
    s0 = out[out[schema.SERIES_ID] == "S0"]["target_date"].dt.strftime("%Y-%m-%d").tolist()
    s1 = out[out[schema.SERIES_ID] == "S1"]["target_date"].dt.strftime("%Y-%m-%d").tolist()
    assert s0 == ["2020-11-02", "2020-11-03", "2020-11-04", "2020-11-05"]  # business days
    assert s1 == ["2020-10-31", "2020-11-01", "2020-11-02", "2020-11-03"]  # calendar days
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    last = (
        features[features[schema.DATE] <= pd.Timestamp(AS_OF)]
        .groupby(schema.SERIES_ID)[schema.Y]
        .last()
    )
    ratio = out.groupby(schema.SERIES_ID)["yhat"].first() / last
    assert ratio.between(0.7, 1.3).all()  # inverse-scaled back to the price level


def test_series_with_too_little_history_are_skipped(
    trained: TrainedModel, features: pd.DataFrame
) -> None:
    short = features[(features[schema.SERIES_ID] == "S0") | (features[schema.DATE] >= "2020-10-26")]
    out = predict(trained, short, AS_OF, FREQ)
    assert set(out[schema.SERIES_ID]) == {"S0"}
    empty = predict(trained, features, dt.date(2019, 1, 1), FREQ)
    assert empty.empty and list(empty.columns) == FORECAST_COLUMNS


def test_a_forecast_reads_only_the_rows_its_windows_reach() -> None:
    features = random_walk_features(n_series=2, n_days=200, seed=3)
    dates = features[schema.DATE].drop_duplicates().sort_values().to_numpy()
    ends = {"S0": dates[[120, 150]], "S1": dates[[5, 199]]}  # S1: none before its first date
    rows = readable_rows(features, ends, lookback=30)
    s0 = rows.loc[rows[schema.SERIES_ID] == "S0", schema.DATE]
    assert s0.min() == dates[91] and s0.max() == dates[150] and len(s0) == 60
    s1 = rows.loc[rows[schema.SERIES_ID] == "S1", schema.DATE]
    assert s1.min() == dates[0] and s1.max() == dates[199]


def test_a_backtest_forward_pass_in_batches_gives_the_same_forecasts(
    trained: TrainedModel, features: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    dates = features[schema.DATE].to_numpy("datetime64[ns]")
    origins = {s: dates[(dates > dates[100]) & (dates <= dates[220])][::3] for s in ("S0", "S1")}
    whole = predict_at(trained, features, origins, FREQ)
    windows = sum(len(d) for d in origins.values())
    assert len(whole) == windows * 4 and windows > 100
    monkeypatch.setattr(forecast_module, "BATCH", 7)  # many passes, a short last one
    batched = predict_at(trained, features, origins, FREQ)
    # the same windows and weights; a small batch may take another float32 kernel (last bit)
    pd.testing.assert_frame_equal(batched, whole, check_exact=False, rtol=1e-6)


def test_the_asinh_scale_goes_back_to_prices_and_is_read_from_the_window_alone(
    features: pd.DataFrame,
) -> None:
    model = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, dropout=0.0, asinh_rows=8)
    train = TrainingConfig(max_epochs=2, batch_size=64, train_window_days=365)
    trained = train_full(features, model, train, 4, dt.date(2020, 9, 30))
    assert trained.asinh_rows == 8 and trained.hyperparameters["asinh_rows"] == 8
    out = predict(trained, features, AS_OF, FREQ)
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    # rows before the window (its lookback) change nothing: the scale is the window's own
    older = features.copy()
    old = older[schema.DATE] < pd.Timestamp(AS_OF) - pd.Timedelta(days=40)
    older.loc[old, schema.Y] *= 3.0
    pd.testing.assert_frame_equal(predict(trained, older, AS_OF, FREQ), out)
    # a network and base that predict no change: the forecast is the last price, exactly
    # back through sinh and the scalers
    for weights in trained.module.parameters():
        weights.data.zero_()
    for name, buffer in trained.module.named_buffers():
        if name.startswith(("base_", "gate_")):
            buffer.zero_()
    last = features.loc[features[schema.DATE] <= pd.Timestamp(AS_OF)].groupby(schema.SERIES_ID)
    naive = predict(trained, features, AS_OF, FREQ).merge(last[schema.Y].last().reset_index())
    assert naive["yhat"].to_numpy() == pytest.approx(naive[schema.Y].to_numpy(), rel=1e-5)
