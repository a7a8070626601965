"""The nightly backtest: origins, no leakage, batched forecasts equal single ones, row metrics."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline_lib import schema
from pipeline_lib.config import BacktestConfig, ModelConfig, TrainingConfig
from pipeline_lib.evaluation.scoring import score_forecasts, score_rows
from pipeline_lib.forecasting.backtest import (
    baseline_forecasts,
    lstm_forecasts,
    overall_mase,
    plan_backtest,
    score_backtest,
)
from pipeline_lib.forecasting.linear_baseline import LinearLags
from pipeline_lib.forecasting.model.base import refit_to
from pipeline_lib.forecasting.model.forecast import predict, predict_at
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.naive import SeasonalNaive

AS_OF = dt.date(2020, 12, 31)
FREQ = {"S0": "B", "S1": "B"}
FEATURES = random_walk_features(n_series=2, n_days=300, start=dt.date(2020, 1, 1))
CFG = BacktestConfig(last_n=6, step=2)


@pytest.fixture(scope="module")
def plan():
    return plan_backtest(FEATURES, AS_OF, 3, CFG, min_train=13)


@pytest.fixture(scope="module")
def trained(plan):
    return train_full(
        FEATURES,
        ModelConfig(lookback=10, hidden_size=4, embedding_dim=2),
        TrainingConfig(max_epochs=2, train_window_days=400),
        horizon=3,
        train_end=AS_OF,
        fit_end=plan.holdout_start,
    )


def test_origins_are_the_last_n_step_apart_with_observed_targets(plan) -> None:
    dates = pd.DatetimeIndex(FEATURES.loc[FEATURES.series_id == "S0", schema.DATE])
    dates = dates[dates <= pd.Timestamp(AS_OF)]
    expected = dates[[len(dates) - 4 - 2 * k for k in range(5, -1, -1)]]
    assert list(pd.DatetimeIndex(plan.origins["S0"])) == list(expected)
    assert plan.n_windows == 12
    assert plan.holdout_start == expected[0].date()


def test_model_is_trained_only_up_to_the_holdout(trained, plan) -> None:
    assert trained.target_end == plan.holdout_start < AS_OF == trained.train_end
    leaky = dataclasses.replace(trained, fit_end=None)
    with pytest.raises(ValueError, match="cannot be scored out of sample"):
        lstm_forecasts(leaky, FEATURES, plan, FREQ)


def test_batched_backtest_equals_one_forecast_per_origin(trained, plan) -> None:
    batched = lstm_forecasts(trained, FEATURES, plan, FREQ)
    assert len(batched) == plan.n_windows * 3
    for sid, dates in plan.origins.items():
        for date in dates:
            day = pd.Timestamp(date).date()
            alone = predict(trained, FEATURES, day, FREQ)
            alone = alone[alone.series_id == sid].reset_index(drop=True)
            got = batched[(batched.series_id == sid) & (batched.forecast_date == date)]
            np.testing.assert_allclose(
                got[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(),
                alone[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(),
                rtol=1e-5,
            )
            assert list(got.target_date) == list(alone.target_date)


def test_the_backtest_scores_the_base_refitted_at_the_holdout_start_as_tonights_is(
    trained, plan
) -> None:
    got = lstm_forecasts(trained, FEATURES, plan, FREQ, base_refit_rows=150)
    history = schema.dated_up_to(FEATURES, AS_OF)
    start = plan.holdout_start
    refitted = refit_to(trained, history, start, rows=150, at_end=True)
    assert not torch.equal(refitted.module.base_weight, trained.module.base_weight)
    assert refit_to(trained, history, start, rows=150) is trained  # at the target end: as is
    expected = predict_at(refitted, history, plan.origins, FREQ)
    np.testing.assert_allclose(got["yhat"].to_numpy(), expected["yhat"].to_numpy(), rtol=1e-6)
    as_trained = lstm_forecasts(trained, FEATURES, plan, FREQ)
    assert not np.allclose(got["yhat"].to_numpy(), as_trained["yhat"].to_numpy())
    # nothing after the hold-out start reaches the base
    tampered = FEATURES.copy()
    tampered.loc[tampered[schema.DATE] > pd.Timestamp(start), schema.Y] *= 3.0
    again = refit_to(trained, tampered, start, rows=150, at_end=True)
    assert torch.equal(again.module.base_weight, refitted.module.base_weight)


def test_rows_after_an_origin_never_change_its_forecast(trained) -> None:
    origin = np.datetime64("2020-11-02", "ns")
    base = predict_at(trained, FEATURES, {"S1": np.array([origin])}, FREQ)
    later = FEATURES[schema.DATE] > pd.Timestamp(origin)
    tampered = FEATURES.copy()
    tampered.loc[later, [schema.Y, "temp_max"]] *= 3.0
    pd.testing.assert_frame_equal(
        predict_at(trained, tampered, {"S1": np.array([origin])}, FREQ), base
    )


def test_baselines_predict_at_equals_predict_on_each_date(plan) -> None:
    for cls in (SeasonalNaive, LinearLags):
        model = cls(min_calibration=5).fit(FEATURES)
        batched = model.predict_at(plan.origins, 3, "B")
        for date in plan.origins["S1"][:2]:
            alone = model.predict(pd.Timestamp(date).date(), 3, "B")
            alone = alone[alone.series_id == "S1"].reset_index(drop=True)
            got = batched[(batched.series_id == "S1") & (batched.forecast_date == date)]
            np.testing.assert_allclose(got["yhat"].to_numpy(), alone["yhat"].to_numpy())


def test_row_metrics_average_to_the_summary_metrics(trained, plan) -> None:
    frames = pd.concat(
        [
            lstm_forecasts(trained, FEATURES, plan, FREQ),
            baseline_forecasts(["naive"], FEATURES, plan, FREQ, (0.1, 0.5, 0.9)),
        ],
        ignore_index=True,
    )
    rows, summary = score_backtest(frames, FEATURES, plan, (0.1, 0.5, 0.9))
    assert set(summary["model"]) == {"lstm", "naive"}
    for (version, sid), part in rows.groupby(["model_version", "series_id"]):
        row = summary[
            (summary.model_version == version)
            & (summary.series_id == sid)
            & (summary.horizon == "ALL")
        ].iloc[0]
        assert part["abs_error"].mean() == pytest.approx(row.mae)
        assert np.sqrt(part["squared_error"].mean()) == pytest.approx(row.rmse)
        assert part["scaled_error"].mean() == pytest.approx(row.mase)
        assert part["smape"].mean() == pytest.approx(row.smape)
        assert part["pinball_lower"].mean() == pytest.approx(row.pinball_q100)
        assert part["covered"].mean() == pytest.approx(row.coverage)
        # one scale per series, the scaled errors' denominator to the last bit (SQL keeps it)
        (scale,) = set(part["mase_scale"])
        assert scale > 0
        np.testing.assert_array_equal(part["abs_error"] / scale, part["scaled_error"])
    version = trained.version
    per_series = summary[(summary.model_version == version) & (summary.horizon == "ALL")]
    assert overall_mase(summary, version, ["S0", "S1"]) == pytest.approx(per_series.mase.mean())
    assert np.isnan(overall_mase(summary, version, ["S0", "missing"]))


def test_score_rows_matches_score_forecasts_on_a_toy() -> None:
    dates = pd.date_range("2024-01-01", periods=6, freq="D")
    history = pd.DataFrame({"series_id": "A", "date": dates, "y": [1.0, 2, 4, 3, 5, 6]})
    forecasts = pd.DataFrame(
        {
            "series_id": "A",
            "forecast_date": dates[3],
            "target_date": dates[4:],
            "horizon": [1, 2],
            "yhat": [4.0, 7.0],
            "yhat_lower": [3.0, 6.5],
            "yhat_upper": [6.0, 8.0],
        }
    )
    rows = score_rows(forecasts, history, history)
    assert list(rows["abs_error"]) == [1.0, 1.0]
    assert list(rows["covered"]) == [True, False]
    # naive scale on 1, 2, 4, 3 = mean(1, 2, 1) = 4/3
    assert rows["scaled_error"].tolist() == pytest.approx([0.75, 0.75])
    summary = score_forecasts(forecasts, history, history)
    assert summary.loc[summary.horizon == "ALL", "mase"].item() == pytest.approx(0.75)
