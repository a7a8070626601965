"""Performance decay and prediction drift: hand-computed values on tiny frames, planted decay
(doubled errors, under-covering intervals), the minimum sample, and shifted forecasts."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from pipeline_lib.monitoring.decay import (
    BACKTEST_SUMMARY_COLUMNS,
    DECAY_METRICS,
    ERROR_FEATURE,
    backtest_summary,
    horizon_feature,
    realised_errors,
)
from pipeline_lib.monitoring.decay import (
    decay_metrics as decay,
)
from pipeline_lib.monitoring.drift import DRIFT_COLUMNS
from pipeline_lib.monitoring.prediction_drift import prediction_drift

D = dt.date


def forecast_rows(rows: list[tuple]) -> pd.DataFrame:
    """(series, forecast_date, target_date, horizon, yhat, lower, upper) tuples, model naive."""
    cols = ["series_id", "forecast_date", "target_date", "horizon", "yhat"]
    cols += ["yhat_lower", "yhat_upper"]
    return pd.DataFrame(rows, columns=cols).assign(model="naive", model_version="naive-v1")


def test_realised_errors_by_hand() -> None:
    forecasts = forecast_rows(
        [
            ("A", D(2024, 1, 2), D(2024, 1, 3), 1, 10.0, 9.0, 11.0),  # actual 12: out
            ("A", D(2024, 1, 1), D(2024, 1, 3), 2, 11.0, 9.0, 13.0),  # actual 12: in
            ("A", D(2024, 1, 2), D(2024, 1, 4), 2, 10.0, None, 11.0),  # bound missing
            ("A", D(2024, 1, 2), D(2024, 1, 5), 3, 10.0, 9.0, 11.0),  # after as_of
            ("B", D(2024, 1, 2), D(2024, 1, 3), 1, 5.0, 4.0, 5.0),  # actual 5 on the bound: in
            ("B", D(2024, 1, 2), D(2024, 1, 4), 2, 5.0, 4.0, 6.0),  # no actual yet
        ]
    )
    actuals = pd.DataFrame(
        {
            "series_id": ["A", "A", "A", "B"],
            "target_date": [D(2024, 1, 3), D(2024, 1, 4), D(2024, 1, 5), D(2024, 1, 3)],
            "actual": [12.0, 9.5, 10.0, 5.0],
        }
    )
    before = forecasts.copy()
    out = realised_errors(forecasts, actuals, as_of=D(2024, 1, 4))
    pd.testing.assert_frame_equal(forecasts, before)  # input untouched
    assert list(out["series_id"]) == ["A", "A", "A", "B"]
    assert list(out["forecast_date"].dt.date) == [D(2024, 1, 1), D(2024, 1, 2), D(2024, 1, 2)] + [
        D(2024, 1, 2)
    ]
    assert list(out["horizon"]) == [2, 1, 2, 1]
    assert list(out["error"]) == [1.0, 2.0, -0.5, 0.0]  # actual - yhat
    assert list(out["abs_error"]) == [1.0, 2.0, 0.5, 0.0]
    assert out["covered"].tolist() == [True, False, pd.NA, True]
    assert {"model", "model_version", "actual"} <= set(out.columns)
    # without as_of: every actual, the 5 January one included
    assert len(realised_errors(forecasts, actuals)) == 5
    assert realised_errors(forecasts, actuals.iloc[:0]).empty
    with pytest.raises(ValueError, match="more than one row"):
        realised_errors(forecasts, pd.concat([actuals, actuals]))
    with pytest.raises(ValueError, match="lacks the columns"):
        realised_errors(forecasts.drop(columns="yhat"), actuals)


AS_OF = D(2024, 3, 29)


def live_errors(abs_errors: dict[int, list[float]], covered: dict[int, list[bool]]) -> pd.DataFrame:
    """Realised forecasts of series A (model naive) with the given absolute errors and
    coverage per horizon, one forecast date per value, target dates up to AS_OF."""
    rows = []
    for h, errs in abs_errors.items():
        for i, (e, inside) in enumerate(zip(errs, covered[h], strict=True)):
            target = AS_OF - dt.timedelta(days=i)
            width = e + 1.0 if inside else e / 2
            rows.append(("A", target - dt.timedelta(days=h), target, h, 100.0, 100.0 + e, width))
    frame = pd.DataFrame(
        rows,
        columns=["series_id", "forecast_date", "target_date", "horizon", "yhat", "actual", "w"],
    )
    return frame.assign(
        model="naive",
        yhat_lower=frame["yhat"] - frame["w"],
        yhat_upper=frame["yhat"] + frame["w"],
        abs_error=(frame["actual"] - frame["yhat"]).abs(),
    ).drop(columns="w")


def backtest_rows(series: str, model: str, figures: dict[int, list[tuple[float, float]]]):
    """backtest_results rows: (abs_error, scaled_error) pairs per horizon."""
    rows = [(series, model, h, a, s) for h, pairs in figures.items() for a, s in pairs]
    return pd.DataFrame(
        rows, columns=["series_id", "model", "horizon", "abs_error", "scaled_error"]
    ).assign(model_version=f"{model}-v1")


def table(out: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float, bool]]:
    return {
        (r.feature, r.metric): (r.value, r.threshold, r.is_drift)
        for r in out.itertuples(index=False)
    }


def test_decay_metrics_by_hand() -> None:
    # live: h1 abs errors 1, 3 (covered, covered); h2 2, 2 (covered, not)
    errors = live_errors({1: [1.0, 3.0], 2: [2.0, 2.0]}, {1: [True, True], 2: [True, False]})
    # backtest of naive on A: h1 scaled errors 0.5, 0.5 (abs 1, 1); h2 1.0 (abs 2): scale
    # (1 + 1 + 2) / (0.5 + 0.5 + 1) = 2. A lstm row of another series must not count.
    backtest = pd.concat(
        [
            backtest_rows("A", "naive", {1: [(1.0, 0.5), (1.0, 0.5)], 2: [(2.0, 1.0)]}),
            backtest_rows("A", "lstm", {1: [(9.0, 4.5)]}),
            backtest_rows("B", "naive", {1: [(9.0, 9.0)]}),
        ]
    )
    out = decay(errors, backtest, AS_OF, window_days=30, nominal_coverage=0.8, min_realised=2)
    assert list(out.columns) == DRIFT_COLUMNS
    assert (
        list(out["feature"])
        == [ERROR_FEATURE] * 7 + ["forecast_error_h1"] * 7 + ["forecast_error_h2"] * 7
    )
    assert list(out["metric"]) == DECAY_METRICS * 3
    t = table(out)
    # all horizons: MAE (1 + 3 + 2 + 2) / 4 = 2, MASE 2 / 2 = 1; backtest MASE of the same mix
    # (0.5, 0.5, 1, 1) / 4 = 0.75; ratio 4/3 > 1.2. Coverage 3/4: gap -0.05, within 0.10.
    assert t[(ERROR_FEATURE, "n_realised")] == (4.0, pytest.approx(math.nan, nan_ok=True), False)
    assert t[(ERROR_FEATURE, "mae")][::2] == (2.0, True)
    assert t[(ERROR_FEATURE, "mase")][0] == pytest.approx(1.0)
    assert t[(ERROR_FEATURE, "backtest_mase")][0] == pytest.approx(0.75)
    assert t[(ERROR_FEATURE, "mase_ratio")] == (pytest.approx(4 / 3), 1.2, True)
    assert t[(ERROR_FEATURE, "coverage")][::2] == (pytest.approx(0.75), False)
    assert t[(ERROR_FEATURE, "coverage_gap")] == (pytest.approx(-0.05), 0.1, False)
    # h1: MASE 2 / 2 = 1 against 0.5: ratio 2, flagged; coverage 1.0: gap +0.2, flagged
    assert t[("forecast_error_h1", "mase_ratio")] == (pytest.approx(2.0), 1.2, True)
    assert t[("forecast_error_h1", "coverage_gap")] == (pytest.approx(0.2), 0.1, True)
    assert t[("forecast_error_h1", "coverage")][2] is True  # carries the gap's flag
    # h2: MASE 1 against 1: ratio 1, not flagged; coverage 1/2: gap -0.3, flagged
    assert t[("forecast_error_h2", "mase_ratio")] == (pytest.approx(1.0), 1.2, False)
    assert t[("forecast_error_h2", "mae")][2] is False
    assert t[("forecast_error_h2", "coverage_gap")] == (pytest.approx(-0.3), 0.1, True)
    # a given scale replaces the backtest's: MASE 2 / 4 = 0.5, ratio 0.5 / 0.75
    scaled = table(decay(errors, backtest, AS_OF, 30, 0.8, mase_scale={"A": 4.0}, min_realised=2))
    assert scaled[(ERROR_FEATURE, "mase")][0] == pytest.approx(0.5)
    assert scaled[(ERROR_FEATURE, "mase_ratio")][::2] == (pytest.approx(2 / 3), False)


def test_decay_window_minimum_sample_and_missing_backtest() -> None:
    covered = {1: [True] * 4 + [False], 2: [True, True, False]}  # 6 / 8: gap -0.05
    errors = live_errors({1: [1.0] * 5, 2: [1.0] * 3}, covered)
    backtest = backtest_rows("A", "naive", {1: [(1.0, 1.0)], 2: [(1.0, 1.0)]})
    out = decay(errors, backtest, AS_OF, window_days=30, min_realised=4)
    # h2 has 3 realised forecasts (< 4): no rows for it; all horizons (8) and h1 (5) have
    assert list(dict.fromkeys(out["feature"])) == [ERROR_FEATURE, horizon_feature(1)]
    assert table(out)[(ERROR_FEATURE, "n_realised")][0] == 8.0
    # too few realised forecasts anywhere: no rows at all
    assert decay(errors, backtest, AS_OF, window_days=30, min_realised=9).empty
    # the window: only target dates in [AS_OF - 1, AS_OF] (2 per horizon) count
    assert decay(errors, backtest, AS_OF, window_days=2, min_realised=4)["value"].iloc[0] == 4.0
    # forecasts after as_of are not counted either (a backfill replays an earlier night)
    early = table(decay(errors, backtest, AS_OF - dt.timedelta(days=2), 30, min_realised=2))
    assert early[(ERROR_FEATURE, "n_realised")][0] == 3 + 1
    # no backtest for the model: MAE and coverage only
    other = backtest.assign(model="lstm")
    metrics = decay(errors, other, AS_OF, 30, min_realised=4).query("feature == @ERROR_FEATURE")
    assert list(metrics["metric"]) == ["n_realised", "mae", "coverage", "coverage_gap"]
    assert not metrics["is_drift"].any()
    # without bounds: no coverage rows
    bare = errors.drop(columns=["yhat_lower", "yhat_upper"])
    assert "coverage" not in set(decay(bare, backtest, AS_OF, 30, min_realised=4)["metric"])
    with pytest.raises(ValueError, match="nominal_coverage"):
        decay(errors, backtest, AS_OF, 30, nominal_coverage=80)
    with pytest.raises(ValueError, match="lacks the columns"):
        decay(errors.drop(columns="model"), backtest, AS_OF)


def simulated(seed: int, error_factor: float, cover: float, n: int = 60) -> pd.DataFrame:
    """60 nights x horizons 1-3 of series A whose absolute errors are factor x |N(0, 1)|,
    and whose interval covers each actual with probability ``cover``."""
    rng = np.random.default_rng(seed)
    errs = {h: list(error_factor * np.abs(rng.normal(size=n))) for h in (1, 2, 3)}
    inside = {h: list(rng.random(n) < cover) for h in (1, 2, 3)}
    return live_errors(errs, inside)


BACKTEST = backtest_rows(
    "A",
    "naive",
    {  # the model's backtest: |N(0, 1)| errors on a scale of 1, i.e. MASE ~ 0.8 per horizon
        h: [(e, e) for e in np.abs(np.random.default_rng(99).normal(size=40))] for h in (1, 2, 3)
    },
)


def test_doubled_errors_and_under_covering_intervals_are_flagged() -> None:
    flagged = table(decay(simulated(1, error_factor=2.0, cover=0.5), BACKTEST, AS_OF, 90, 0.8))
    calm = table(decay(simulated(1, error_factor=1.0, cover=0.8), BACKTEST, AS_OF, 90, 0.8))
    for feature in (ERROR_FEATURE, *map(horizon_feature, (1, 2, 3))):
        ratio, threshold, flag = flagged[(feature, "mase_ratio")]
        assert threshold == 1.2 and flag and 1.5 < ratio < 2.7
        gap, threshold, flag = flagged[(feature, "coverage_gap")]
        assert threshold == pytest.approx(0.1) and flag and -0.45 < gap < -0.15
        assert not calm[(feature, "mase_ratio")][2]
        assert not calm[(feature, "coverage_gap")][2]


def path(series: str, forecast_date: D, level: float, horizon: int = 14) -> pd.DataFrame:
    """One night's forecast: yhat = level + 0.01 h over horizons 1..horizon."""
    h = np.arange(1, horizon + 1)
    return pd.DataFrame(
        {
            "series_id": series,
            "forecast_date": pd.Timestamp(forecast_date),
            "target_date": pd.Timestamp(forecast_date) + pd.to_timedelta(h, unit="D"),
            "horizon": h,
            "yhat": level + 0.01 * h,
        }
    )


def reference_forecasts(series: str = "A", nights: int = 120, seed: int = 3) -> pd.DataFrame:
    """Nightly forecasts of a stationary level: N(100, 5) per night."""
    rng = np.random.default_rng(seed)
    start = D(2023, 1, 2)
    levels = 100 + 5 * rng.normal(size=nights)
    return pd.concat(
        [path(series, start + dt.timedelta(days=i), lv) for i, lv in enumerate(levels)],
        ignore_index=True,
    )


def test_prediction_drift_by_hand() -> None:
    # five reference nights whose forecasts average 1..5 (two horizons each: n +- 0.5):
    # mean 3, sample std sqrt(2.5). Tonight's forecasts 5.5 and 6.5 average 6:
    # (6 - 3) / 1.581139 = 1.897
    nights = pd.date_range("2024-01-01", periods=5, freq="D")
    reference = pd.DataFrame(
        {
            "series_id": "A",
            "forecast_date": np.repeat(nights, 2),
            "yhat": np.repeat([1.0, 2, 3, 4, 5], 2) + np.tile([-0.5, 0.5], 5),
        }
    )
    tonight = pd.DataFrame(
        {
            "series_id": ["A", "A", "B"],
            "forecast_date": pd.Timestamp("2024-02-01"),
            "yhat": [5.5, 6.5, 6.0],
        }
    )
    out = prediction_drift(tonight, reference, shift_threshold=1.5)
    assert list(out.columns) == DRIFT_COLUMNS
    assert len(out) == 1  # B has no reference forecasts: no rows
    row = out.iloc[0]
    assert (row["series_id"], row["feature"], row["metric"]) == ("A", "prediction", "mean_shift")
    assert row["value"] == pytest.approx(3 / math.sqrt(2.5))
    assert row["threshold"] == 1.5 and row["is_drift"]
    assert not prediction_drift(tonight, reference)["is_drift"].any()  # 1.9 < 3
    # fewer than MIN_VALUES (5) reference nights: no rows
    assert prediction_drift(tonight, reference.iloc[:8]).empty


def test_prediction_drift_flags_a_shifted_forecast_distribution() -> None:
    reference = reference_forecasts()
    tonight_ok = path("A", D(2024, 1, 2), 103.0)  # 0.6 std off: a normal night
    tonight_far = path("A", D(2024, 1, 2), 125.0)  # 5 std off
    ok = prediction_drift(tonight_ok, reference)
    far = prediction_drift(tonight_far, reference)
    assert list(ok["metric"]) == ["mean_shift"]  # one night: no distribution checks
    assert not ok["is_drift"].any() and far["is_drift"].all()
    assert far["value"].iloc[0] == pytest.approx(5, abs=0.6)
    # a window of 30 nights moved by 1.5 std: KS and Wasserstein flag it too; unmoved: nothing
    window = reference_forecasts(nights=30, seed=11)
    moved = prediction_drift(window.assign(yhat=window["yhat"] + 7.5), reference)
    assert list(moved["metric"]) == ["ks_statistic", "ks_pvalue", "wasserstein_std", "mean_shift"]
    flags = moved.set_index("metric")["is_drift"]
    assert flags["ks_pvalue"] and flags["wasserstein_std"]
    assert not prediction_drift(window, reference)["is_drift"].any()


def test_prediction_change_is_level_free() -> None:
    # naive forecasts (yhat = the last actual) predict no change at any level: nothing to flag,
    # and the standardised values are undefined (a constant reference)
    actuals = pd.DataFrame(
        {
            "series_id": "A",
            "target_date": pd.date_range("2022-12-01", "2024-01-02", freq="D"),
            "actual": np.linspace(50.0, 150.0, 398),
        }
    )
    last = actuals.set_index("target_date")["actual"]

    def naive(day: D) -> pd.DataFrame:
        return path("A", day, float(last[pd.Timestamp(day)]), horizon=5).assign(
            yhat=float(last[pd.Timestamp(day)])
        )

    reference = pd.concat([naive(D(2023, 1, 2) + dt.timedelta(days=i)) for i in range(60)])
    out = prediction_drift(naive(D(2024, 1, 2)), reference, actuals=actuals)
    assert list(out["feature"]) == ["prediction_change"]
    assert math.isnan(out["value"].iloc[0]) and not out["is_drift"].iloc[0]
    # the level itself moved far from the reference's: the level check flags it
    assert prediction_drift(naive(D(2024, 1, 2)), reference)["is_drift"].all()
    # a model that starts predicting +20% is flagged on the change
    bold = naive(D(2024, 1, 2)).assign(yhat=lambda f: f["yhat"] * 1.2)
    wobbly = reference.assign(yhat=reference["yhat"] * (1 + 0.01 * np.sin(np.arange(300))))
    assert prediction_drift(bold, wobbly, actuals=actuals)["is_drift"].all()


def test_backtest_summary_by_hand_and_decay_from_it() -> None:
    """The summary keeps what decay needs: per (series, model, horizon) the mean finite scaled
    error and, for the scale, the sums over the rows whose scaled error is finite and positive;
    two versions of one model pool, as in the rows."""
    rows = pd.concat(
        [
            backtest_rows("A", "naive", {1: [(1.0, 0.5), (3.0, np.inf)], 2: [(2.0, 1.0)]}),
            backtest_rows("A", "lstm", {1: [(0.0, 0.0), (9.0, np.nan)]}),
            backtest_rows("A", "lstm", {1: [(4.0, 2.0)]}).assign(model_version="lstm-v2"),
            backtest_rows("B", "naive", {1: [(9.0, np.inf)]}),
        ],
        ignore_index=True,
    )
    summary = backtest_summary(rows)
    assert list(summary.columns) == BACKTEST_SUMMARY_COLUMNS
    figures = ["backtest_mase", "scale_abs_error", "scale_scaled_error"]
    got = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in summary[["series_id", "model", "horizon", *figures]].itertuples(index=False)
    }
    nan = pytest.approx(math.nan, nan_ok=True)
    assert got == {
        ("A", "lstm", 1): (1.0, 4.0, 2.0),  # 0 and 2 finite; only 2 positive
        ("A", "naive", 1): (0.5, 1.0, 0.5),  # inf is neither
        ("A", "naive", 2): (1.0, 2.0, 1.0),
        ("B", "naive", 1): (nan, nan, nan),  # nothing finite: no MASE, no scale
    }
    # decay from the summary is decay from the rows; a frame of neither kind is refused
    errors = live_errors({1: [1.0, 3.0], 2: [2.0, 2.0]}, {1: [True, True], 2: [True, False]})
    errors = pd.concat([errors, errors.assign(series_id="B")], ignore_index=True)
    from_rows = decay(errors, rows, AS_OF, window_days=30, min_realised=2)
    from_summary = decay(errors, summary, AS_OF, window_days=30, min_realised=2)
    pd.testing.assert_frame_equal(from_summary, from_rows)
    assert "mase_ratio" in set(from_rows.loc[from_rows["series_id"] == "A", "metric"])
    assert "mase_ratio" not in set(from_rows.loc[from_rows["series_id"] == "B", "metric"])
    with pytest.raises(ValueError, match="lacks the columns"):
        decay(errors, summary.drop(columns="scale_abs_error"), AS_OF)
