"""Metrics against hand-computed values, and the forecast scorer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline_lib.evaluation import metrics as m
from pipeline_lib.evaluation import scoring

Y = np.array([10.0, 12.0, 8.0, 10.0])
YHAT = np.array([11.0, 10.0, 8.0, 14.0])  # errors -1, 2, 0, -4


def test_point_metrics_by_hand() -> None:
    assert m.mae(Y, YHAT) == pytest.approx(7 / 4)
    assert m.rmse(Y, YHAT) == pytest.approx(math.sqrt(21 / 4))
    terms = [1 / 21, 2 / 22, 0, 4 / 24]
    assert m.smape(Y, YHAT) == pytest.approx(200 * sum(terms) / 4)
    assert m.smape(np.array([0.0, 1.0]), np.array([0.0, 3.0])) == pytest.approx(50.0)  # 0/0 -> 0


def test_mase_scaled_by_seasonal_naive_of_history() -> None:
    history = np.array([1.0, 3.0, 2.0, 6.0])  # naive diffs 2, 1, 4 -> 7/3; season 2: 1, 3 -> 2
    assert m.naive_scale(history) == pytest.approx(7 / 3)
    assert m.mase(Y, YHAT, history) == pytest.approx((7 / 4) / (7 / 3))
    assert m.mase(Y, YHAT, history, season=2) == pytest.approx((7 / 4) / 2)
    assert math.isinf(m.mase(Y, YHAT, np.ones(5)))
    assert math.isnan(m.mase(Y, YHAT, np.array([1.0])))


def test_pinball_coverage_width_by_hand() -> None:
    # q=0.9: under-forecast costs 0.9 per unit, over-forecast 0.1 per unit
    y, pred = np.array([10.0, 10.0]), np.array([8.0, 13.0])
    assert m.pinball(y, pred, 0.9) == pytest.approx((0.9 * 2 + 0.1 * 3) / 2)
    lower, upper = np.array([9.0, 11.0, 8.0, 9.0]), np.array([11.0, 13.0, 8.0, 9.5])
    assert m.coverage(Y, lower, upper) == pytest.approx(3 / 4)  # 8 on both bounds is in
    assert m.width(lower, upper) == pytest.approx((2 + 2 + 0 + 0.5) / 4)


def _forecasts() -> pd.DataFrame:
    dates = pd.to_datetime(["2024-01-02", "2024-01-03"])
    rows = []
    for k, yhat in enumerate(YHAT):
        rows.append(
            {
                "series_id": "A",
                "forecast_date": pd.Timestamp("2024-01-01") + pd.Timedelta(days=k // 2),
                "target_date": dates[k % 2] + pd.Timedelta(days=k // 2),
                "horizon": k % 2 + 1,
                "yhat": yhat,
                "yhat_lower": yhat - 1,
                "yhat_upper": yhat + 1,
            }
        )
    return pd.DataFrame(rows)


def test_score_forecasts_rows_and_all_row() -> None:
    fc = _forecasts()  # targets 01-02, 01-03 (origin 01-01) and 01-03, 01-04 (origin 01-02)
    actual_dates = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
    actuals = pd.DataFrame({"series_id": "A", "date": actual_dates, "y": [10.0, 12.0, 10.0]})
    history = pd.DataFrame(
        {
            "series_id": "A",
            "date": pd.to_datetime(["2023-12-29", "2023-12-30", "2024-01-01", "2024-01-02"]),
            "y": [1.0, 3.0, 2.0, 99.0],  # the 01-02 row is after the first forecast date
        }
    )
    out = scoring.score_forecasts(fc, actuals, history)
    assert out["horizon"].tolist() == ["1", "2", "ALL"]
    assert (out["model"] == m.DEFAULT_MODEL).all()
    every = out.set_index("horizon").loc["ALL"]
    y = np.array([10.0, 12.0, 12.0, 10.0])  # actual of each forecast row
    assert every["n"] == 4
    assert every["mae"] == pytest.approx(m.mae(y, YHAT))
    assert every["rmse"] == pytest.approx(m.rmse(y, YHAT))
    assert every["mase"] == pytest.approx(m.mae(y, YHAT) / 1.5)  # scale from 1, 3, 2 only
    assert every["smape"] == pytest.approx(m.smape(y, YHAT))
    assert every["pinball_q100"] == pytest.approx(m.pinball(y, YHAT - 1, 0.1))
    assert every["pinball_q500"] == pytest.approx(m.pinball(y, YHAT, 0.5))
    assert every["coverage"] == pytest.approx(m.coverage(y, YHAT - 1, YHAT + 1))
    assert every["width"] == pytest.approx(2.0)
    h1 = out.set_index("horizon").loc["1"]
    assert h1["n"] == 2 and h1["mae"] == pytest.approx(m.mae(y[[0, 2]], YHAT[[0, 2]]))


def test_score_forecasts_by_model_and_errors() -> None:
    fc = _forecasts()
    actuals = pd.DataFrame(
        {"series_id": "A", "date": pd.to_datetime(["2024-01-02", "2024-01-03"]), "y": 1.0}
    )
    both = pd.concat([fc.assign(model="naive"), fc.assign(model="linear")])
    out = scoring.score_forecasts(both, actuals, actuals)
    assert sorted(out["model"].unique()) == ["linear", "naive"]
    assert len(out) == 2 * 3
    with pytest.raises(ValueError, match="lacks the columns"):
        scoring.score_forecasts(fc.drop(columns="yhat_upper"), actuals, actuals)
    with pytest.raises(ValueError, match="no forecast matches"):
        scoring.score_forecasts(fc, actuals.assign(series_id="B"), actuals)


def test_score_forecasts_agrees_with_the_per_group_functions() -> None:
    """The grouped, vectorised scorer gives each group what scikit-learn's functions give it,
    including a zero MASE scale (a constant history: infinite) and no history (NaN)."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2024-01-01", periods=60)
    actuals = pd.concat(
        [
            pd.DataFrame({"series_id": s, "date": dates, "y": 50 + rng.normal(0, 3, 60)})
            for s in ("A", "B", "C")
        ],
        ignore_index=True,
    )
    history = actuals.copy()
    history.loc[history["series_id"] == "B", "y"] = 7.0  # constant: scale 0
    history = history.loc[history["series_id"] != "C"]  # C: no history, no scale
    rows = []
    for model in ("naive", "linear"):
        for s in ("A", "B", "C"):
            for origin in range(20, 50, 3):
                for h in (1, 2, 3):
                    yhat = 50 + rng.normal(0, 2)
                    rows.append(
                        {
                            "model": model,
                            "series_id": s,
                            "forecast_date": dates[origin],
                            "target_date": dates[origin + h],
                            "horizon": h,
                            "yhat": yhat,
                            "yhat_lower": yhat - 2,
                            "yhat_upper": yhat + 2,
                        }  # fmt: skip
                    )
    fc = pd.DataFrame(rows)
    out = scoring.score_forecasts(fc, actuals, history).set_index(["model", "series_id", "horizon"])
    joined = fc.merge(actuals.rename(columns={"date": "target_date"}))
    for (model, s, h), part in [
        *joined.groupby(["model", "series_id", "horizon"]),
        *[((k[0], k[1], "ALL"), g) for k, g in joined.groupby(["model", "series_id"])],
    ]:
        got = out.loc[(model, s, str(h))]
        y, yhat = part["y"].to_numpy(), part["yhat"].to_numpy()
        assert got["n"] == len(part)
        assert got["mae"] == pytest.approx(m.mae(y, yhat), rel=1e-12)
        assert got["rmse"] == pytest.approx(m.rmse(y, yhat), rel=1e-12)
        assert got["smape"] == pytest.approx(m.smape(y, yhat), rel=1e-12)
        assert got["pinball_q900"] == pytest.approx(
            m.pinball(y, part["yhat_upper"].to_numpy(), 0.9), rel=1e-12
        )
        assert got["coverage"] == pytest.approx(
            m.coverage(y, part["yhat_lower"].to_numpy(), part["yhat_upper"].to_numpy())
        )
        if s == "A":
            first = part["forecast_date"].min()
            past = history.loc[(history["series_id"] == s) & (history["date"] <= first), "y"]
            expected = m.mase(y, yhat, past.to_numpy())
        else:
            expected = {"B": np.inf, "C": np.nan}[s]
        assert got["mase"] == pytest.approx(expected, rel=1e-12, nan_ok=True)
    assert np.isinf(out.xs("B", level="series_id")["mase"]).all()
    assert out.xs("C", level="series_id")["mase"].isna().all()
    assert list(out.loc[("linear", "A")].index) == ["1", "2", "3", "ALL"]
