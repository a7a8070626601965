"""What is published per series and horizon bucket: the rules on planted losses, the
Diebold-Mariano test, combinations, and the whole choice on planted series with real baselines."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import BacktestConfig, SelectionConfig, load_settings
from pipeline_lib.forecasting import registry, selection
from pipeline_lib.forecasting.backtest import baseline_forecasts, plan_backtest, score_backtest
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.per_bucket import buckets, choose_all, combine
from pipeline_lib.forecasting.selection import COMBINED, RULES, Choice, choose, dm_pvalue, fallback

QUANTILES = (0.1, 0.5, 0.9)


def _rows(losses: dict[str, dict[int, float]], windows: int = 40, seed: int = 0) -> pd.DataFrame:
    """Backtest rows of one series: model -> {horizon: mean loss}, with seeded noise (sd 0.2)
    around each mean shared by every model, and noise of its own (sd 0.2)."""
    rng = np.random.default_rng(seed)
    horizons = sorted({h for by_h in losses.values() for h in by_h})
    noise = rng.normal(0, 0.2, (windows, len(horizons)))
    rows = []
    for model, by_h in losses.items():
        own = rng.normal(0, 0.2, (windows, len(horizons)))
        for w in range(windows):
            for j, h in enumerate(horizons):
                rows.append(
                    {
                        schema.SERIES_ID: "S",
                        "forecast_date": pd.Timestamp("2021-01-04") + pd.offsets.BDay(2 * w),
                        "horizon": h,
                        "model": model,
                        "scaled_error": max(0.0, by_h[h] + noise[w, j] + own[w, j]),
                    }
                )
    return pd.DataFrame(rows)


def test_buckets_from_their_ends() -> None:
    assert buckets([1, 5], 14) == [(1, 1), (2, 5), (6, 14)]
    assert buckets([], 3) == [(1, 3)]
    assert buckets([5, 1, 14, 30], 14) == [(1, 1), (2, 5), (6, 14)]  # sorted, beyond H dropped


def test_dm_pvalue_separates_a_real_gap_from_noise() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, 60)
    assert dm_pvalue(0.5 + noise, lag=0) < 0.01  # clearly worse
    assert dm_pvalue(noise - noise.mean(), lag=0) == pytest.approx(0.5, abs=0.01)
    assert dm_pvalue(np.zeros(30), lag=2) == 1.0  # identical losses: not worse
    assert np.isnan(dm_pvalue(np.ones(2), lag=0))  # too few windows to test
    # overlapping windows (serially correlated differences) weaken the evidence
    correlated = np.repeat(0.3 + rng.normal(0, 1, 20), 3)
    assert dm_pvalue(correlated, lag=2) > dm_pvalue(correlated, lag=0)


def test_a_model_that_wins_only_the_first_day_is_published_only_there() -> None:
    rows = _rows(
        {
            "naive": dict.fromkeys(range(1, 8), 1.0),
            "lstm": {1: 0.4, **dict.fromkeys(range(2, 8), 2.0)},
        }
    )
    choices = choose_all(rows, 7, [1, 3], "dm_set")["S"]
    assert [(c.first, c.last, c.label) for c in choices] == [
        (1, 1, "lstm"),
        (2, 3, "naive"),
        (4, 7, "naive"),
    ]
    first = choices[0]
    assert first.weights == {"lstm": 1.0} and first.rule == "dm_set"
    assert first.evidence["mase"]["lstm"] < first.evidence["mase"]["naive"]
    assert first.evidence["p_worse_than_best"]["naive"] < 0.01
    assert first.evidence["windows"] == 40


def test_models_the_test_cannot_tell_apart_are_combined() -> None:
    rows = _rows(
        {
            "naive": dict.fromkeys((1, 2), 1.0),
            "ets": dict.fromkeys((1, 2), 1.01),
            "linear": dict.fromkeys((1, 2), 1.02),
            "seasonal_naive": dict.fromkeys((1, 2), 1.8),
        }
    )
    (choice,) = choose_all(rows, 2, [], "dm_set", max_members=3)["S"]
    assert choice.label == "mean(ets,linear,naive)"
    assert choice.weights == pytest.approx({"naive": 1 / 3, "ets": 1 / 3, "linear": 1 / 3})
    assert choice.evidence["p_worse_than_best"]["seasonal_naive"] < 0.01
    (two,) = choose_all(rows, 2, [], "dm_set", max_members=2)["S"]
    assert set(two.weights) == {"naive", "ets"}  # the best two
    # the other rules on the same evidence
    assert choose_all(rows, 2, [], "best")["S"][0].label == "naive"
    assert choose_all(rows, 2, [], "combination", max_members=2)["S"][0].label == "mean(ets,naive)"


def test_the_dm_and_margin_rules_keep_the_reference_without_strong_evidence() -> None:
    # seed 2: linear's MASE is 3% below naive's, a gap the test puts within the noise (p 0.27)
    slight = _rows({"naive": {1: 1.0}, "linear": {1: 0.99}}, seed=2)
    clear = _rows({"naive": {1: 1.0}, "linear": {1: 0.6}})
    assert choose_all(slight, 1, [], "best")["S"][0].label == "linear"
    for rule in ("dm", "margin"):
        assert choose_all(slight, 1, [], rule)["S"][0].label == "naive"
        assert choose_all(clear, 1, [], rule)["S"][0].label == "linear"


def test_margin_dm_set_keeps_the_reference_or_combines_what_beats_it() -> None:
    # nothing beats naive by the margin: naive, even where the test ties linear with it
    slight = _rows({"naive": {1: 1.0}, "linear": {1: 0.97}, "ets": {1: 0.98}}, seed=2)
    (kept,) = choose_all(slight, 1, [], "margin_dm_set")["S"]
    assert kept.label == "naive" and kept.rule == "margin_dm_set"
    assert choose_all(slight, 1, [], "dm_set")["S"][0].label != "naive"
    # two models beat naive by far and cannot be told apart: their mean, not a pick
    tied = _rows({"naive": {1: 1.0}, "linear": {1: 0.6}, "lstm": {1: 0.61}, "ets": {1: 1.5}})
    (both,) = choose_all(tied, 1, [], "margin_dm_set")["S"]
    assert both.label == "mean(linear,lstm)"
    assert choose_all(tied, 1, [], "margin")["S"][0].label in {"linear", "lstm"}  # one, on noise
    # one model clearly best: alone, as margin would publish it
    clear = _rows({"naive": {1: 1.0}, "linear": {1: 0.5}, "lstm": {1: 1.1}})
    assert choose_all(clear, 1, [], "margin_dm_set")["S"][0].label == "linear"


def test_the_set_keeps_only_members_within_the_tolerance_of_the_best() -> None:
    # on 8 windows the test cannot tell lstm, 23% behind linear, from it (p 0.08): the set
    # would average lstm in; the tolerance (10%) leaves it out
    rows = _rows({"naive": {1: 2.0}, "linear": {1: 1.0}, "lstm": {1: 1.2}}, windows=8, seed=4)
    (tied,) = choose_all(rows, 1, [], "margin_dm_set", alpha=0.05)["S"]
    assert tied.label == "mean(linear,lstm)"
    assert tied.evidence["p_worse_than_best"]["lstm"] >= 0.05  # a tie for the test
    (trimmed,) = choose_all(rows, 1, [], "margin_dm_set", alpha=0.05, tolerance=0.1)["S"]
    assert trimmed.label == "linear" and trimmed.evidence["tolerance"] == 0.1
    mase = trimmed.evidence["mase"]
    assert mase["lstm"] > 1.1 * mase["linear"]
    (wide,) = choose_all(rows, 1, [], "dm_set", alpha=0.05, tolerance=0.5)["S"]
    assert wide.label == "mean(linear,lstm)"  # within 50%: kept
    assert load_settings().selection.tolerance == 0.1  # the default


def test_reference_alpha_keeps_the_reference_unless_the_test_also_finds_it_worse() -> None:
    # 10 windows: linear 12% below naive (the margin passes) but the test's p is 0.07
    noisy = _rows({"naive": {1: 1.0}, "linear": {1: 0.8}}, windows=10, seed=0)
    # the same gap on other noise: p 0.002
    clear = _rows({"naive": {1: 1.0}, "linear": {1: 0.8}}, windows=10, seed=6)
    for rule in ("margin", "margin_dm_set"):
        (passed,) = choose_all(noisy, 1, [], rule)["S"]
        assert passed.label == "linear" and "reference_alpha" not in passed.evidence
        assert 0.05 < passed.evidence["p_worse_than_best"]["naive"] < 0.1
        (kept,) = choose_all(noisy, 1, [], rule, reference_alpha=0.05)["S"]
        assert kept.label == "naive" and kept.evidence["reference_alpha"] == 0.05
        assert choose_all(noisy, 1, [], rule, reference_alpha=0.1)["S"][0].label == "linear"
        assert choose_all(clear, 1, [], rule, reference_alpha=0.05)["S"][0].label == "linear"


def test_a_model_missing_most_windows_is_left_out() -> None:
    rows = _rows({"naive": {1: 1.0}, "lstm": {1: 0.1}})
    rows = rows.loc[~((rows["model"] == "lstm") & (rows["forecast_date"] > "2021-02-01"))]
    choice = choose(
        rows.pivot(index="forecast_date", columns="model", values="scaled_error"), "S", 1, 1
    )
    assert choice is not None and choice.label == "naive"
    assert choice.evidence["left_out"] == ["lstm"]
    with pytest.raises(ValueError, match="unknown selection rule 'vote'"):
        choose(rows, "S", 1, 1, rule="vote")


def test_combine_averages_the_members_and_their_bands() -> None:
    base = {
        schema.SERIES_ID: "S",
        "forecast_date": pd.Timestamp("2021-06-30"),
        "target_date": pd.Timestamp("2021-07-01"),
        "horizon": 1,
    }
    forecasts = pd.DataFrame(
        [
            base | {"model": "a", "yhat": 10.0, "yhat_lower": 8.0, "yhat_upper": 12.0},
            base | {"model": "b", "yhat": 20.0, "yhat_lower": 18.0, "yhat_upper": 26.0},
        ]
    )
    mean = Choice("S", 1, 1, "dm_set", {"a": 0.5, "b": 0.5})
    out = combine(forecasts, {"S": [mean]})
    assert out[["yhat", "yhat_lower", "yhat_upper"]].iloc[0].tolist() == [15.0, 13.0, 19.0]
    assert out["model"].tolist() == ["mean(a,b)"]
    # a member without a forecast: the bucket is not published from a partial combination
    missing = Choice("S", 1, 1, "dm_set", {"a": 0.5, "c": 0.5})
    assert combine(forecasts, {"S": [missing]}).empty


def _combine_one_by_one(forecasts: pd.DataFrame, choices: dict) -> pd.DataFrame:
    """The frame-by-frame combination (the implementation before the set-based one)."""
    parts, values = [], ["yhat", "yhat_lower", "yhat_upper"]
    key = [schema.SERIES_ID, "forecast_date", "target_date", "horizon"]
    for sid, series_choices in choices.items():
        rows = forecasts.loc[forecasts[schema.SERIES_ID] == sid]
        for c in series_choices:
            part = rows.loc[rows["horizon"].between(c.first, c.last)]
            members = [part.loc[part["model"] == m].set_index(key)[values] for m in c.weights]
            if any(m.empty for m in members):
                continue
            total = sum(m * w for m, w in zip(members, c.weights.values(), strict=True))
            parts.append(total.dropna().reset_index().assign(model=c.label))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values([schema.SERIES_ID, "forecast_date", "horizon"], ignore_index=True)


def test_combine_in_one_pass_gives_the_frame_by_frame_result_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    models, rows = ["naive", "ets", "arima", "linear", "lstm"], []
    for s in range(30):
        for m in models:
            for h in range(1, 15):
                if rng.random() < 0.03:  # a member without this target date
                    continue
                y = float(rng.normal(50, 10))
                rows.append(
                    {schema.SERIES_ID: f"S{s:02d}", "forecast_date": pd.Timestamp("2021-06-30"),
                     "target_date": pd.Timestamp("2021-06-30") + pd.Timedelta(days=h),
                     "horizon": h, "model": m, "yhat": y if rng.random() > 0.02 else np.nan,
                     "yhat_lower": y - 3.3, "yhat_upper": y + 4.7}
                )  # fmt: skip
    forecasts = pd.DataFrame(rows)
    choices = {}
    for s in range(30):
        series = []
        for first, last in ((1, 1), (2, 5), (6, 14)):
            members = list(rng.choice(models, size=int(rng.integers(1, 4)), replace=False))
            weights = {m: 1.0 / len(members) for m in sorted(members)}
            series.append(Choice(f"S{s:02d}", first, last, "dm_set", weights))
        choices[f"S{s:02d}"] = series
    choices["S03"][1] = Choice("S03", 2, 5, "dm_set", {"naive": 0.5, "absent": 0.5})
    got, want = combine(forecasts, choices), _combine_one_by_one(forecasts, choices)
    assert len(got) > 300 and not (got["model"] == "mean(absent,naive)").any()
    pd.testing.assert_frame_equal(got, want[got.columns], check_exact=True)


def _stats_t_sf(df: float, x: float) -> float:
    from scipy import stats

    return float(stats.t.sf(-x, df))


def _evidence_with_pandas(losses: pd.DataFrame, last: int, step: int) -> dict:
    """The evidence of :func:`choose` as its pandas implementation computed it (before the
    NumPy one): MASE per model in rank order, the DM p-values with scipy.stats' t, windows."""
    table = losses.drop(columns=[schema.SERIES_ID, "forecast_date"])
    table = table.astype(np.float64).replace([np.inf, -np.inf], np.nan)
    combined = table.pop(COMBINED) if COMBINED in table else None
    coverage = table.notna().mean()
    left_out = sorted(str(m) for m in coverage.index[coverage <= 0.5])
    table = table.drop(columns=left_out).dropna()
    mase = table.mean().sort_values(kind="stable")
    best, lag = str(mase.index[0]), max(0, -(-last // step) - 1)

    def p(d: np.ndarray) -> float:  # the test as before: scipy.stats' t distribution
        with mock.patch.object(selection, "special", SimpleNamespace(stdtr=_stats_t_sf)):
            return dm_pvalue(d, lag)

    out = {m: (float(v), p(table[m].to_numpy() - table[best].to_numpy())) for m, v in mase.items()}
    if combined is not None:
        mean_loss = combined.loc[table.index]  # scored on the windows where it is known
        have = mean_loss.notna().to_numpy()
        d = mean_loss.to_numpy()[have] - table[best].to_numpy()[have]
        out["mean"] = (float(mean_loss.loc[have].mean()), p(d))
    return {"ranked": out, "windows": len(table), "left_out": left_out}


@pytest.mark.parametrize("rule", RULES)
def test_choose_in_numpy_gives_the_pandas_evidence_bit_for_bit(rule: str) -> None:
    rng = np.random.default_rng(11)
    for trial in range(40):
        n, models = int(rng.integers(5, 40)), ["naive", "ets", "arima", "linear", "lstm"]
        losses = pd.DataFrame(
            {m: rng.gamma(2.0, 0.5 + 0.1 * i, n) for i, m in enumerate(models)}
        ).assign(**{COMBINED: rng.gamma(2.0, 0.55, n)})
        losses.iloc[rng.integers(0, n, 3), rng.integers(0, 6, 3)] = np.nan  # gaps
        losses.loc[:, "ets"] = np.where(rng.random(n) < 0.6 * (trial % 2), np.nan, losses["ets"])
        losses.iloc[0, 4] = np.inf if trial % 3 == 0 else losses.iloc[0, 4]
        losses["naive"] = losses["linear"] if trial % 5 == 0 else losses["naive"]  # a tie
        losses.insert(0, "forecast_date", pd.bdate_range("2021-01-04", periods=n))
        losses.insert(0, schema.SERIES_ID, "S")
        last = int(rng.integers(1, 15))
        if rule != "dm_combination":
            losses = losses.drop(columns=COMBINED)
        got = choose(losses, "S", 1, last, rule, alpha=0.1, step=2)
        want = _evidence_with_pandas(losses, last, 2)
        assert got is not None
        shown = {m: (got.evidence["mase"][m], got.evidence["p_worse_than_best"][m])
                 for m in got.evidence["mase"]}  # fmt: skip
        ranked = {m: (v, p if np.isfinite(p) else None)
                  for m, (v, p) in want["ranked"].items() if m in shown}  # fmt: skip
        ranked[got.evidence["best"]] = (ranked[got.evidence["best"]][0], 1.0)
        assert list(shown) == list(ranked) and shown == ranked  # the same floats, exactly
        assert got.evidence["windows"] == want["windows"]
        assert got.evidence["left_out"] == want["left_out"]


def _planted() -> pd.DataFrame:
    """Three series: a steady trend (the linear model's), a random walk (naive's), and a
    random walk whose returns carry a strong weekday pattern."""
    trend = random_walk_features(n_series=1, n_days=400, seed=3)
    t = np.arange(len(trend))
    trend[schema.Y] = 100 * np.exp(0.004 * t + np.random.default_rng(3).normal(0, 0.0005, len(t)))
    trend[schema.SERIES_ID] = "TREND"
    walk = random_walk_features(n_series=1, n_days=400, seed=4).assign(**{schema.SERIES_ID: "WALK"})
    return pd.concat([trend, walk], ignore_index=True)


def _night(features: pd.DataFrame, as_of: dt.date) -> registry.Selection:
    cfg = BacktestConfig(last_n=40, step=2, baselines=["naive", "seasonal_naive", "linear"])
    plan = plan_backtest(features, as_of, 5, cfg, min_train=60)
    freqs = {"TREND": "B", "WALK": "B"}
    forecasts = baseline_forecasts(cfg.baselines, features, plan, freqs, QUANTILES)
    rows, summary = score_backtest(forecasts, features, plan, QUANTILES)
    return registry.select(
        summary,
        rows,
        as_of,
        None,
        None,
        list(cfg.baselines),
        horizon=5,
        config=SelectionConfig(rule="dm_set", bucket_ends=[1]),
        step=cfg.step,
    )


def test_planted_series_get_their_own_model_and_a_rerun_repeats_the_choice() -> None:
    features = _planted()
    as_of = pd.Timestamp(features[schema.DATE].max()).date()
    sel = _night(features, as_of)
    # the trend: only the linear model follows it, on every bucket
    assert sel.published["TREND"] == {"1-1": "linear", "2-5": "linear"}
    # the random walk: naive is among the published models everywhere; the weekly one is not
    for label in sel.published["WALK"].values():
        assert "naive" in label.replace("seasonal_naive", "")
        assert "seasonal_naive" not in label
    assert sel.choices["WALK"][0]["evidence"]["p_worse_than_best"]["seasonal_naive"] < 0.1
    # the same night again gives the same choices and evidence
    assert _night(features, as_of) == sel


def test_dm_mean_combines_only_what_beats_the_reference() -> None:
    rows = _rows(
        {
            "naive": dict.fromkeys((1, 2), 1.0),
            "ets": dict.fromkeys((1, 2), 0.6),
            "linear": dict.fromkeys((1, 2), 0.62),
            "seasonal_naive": dict.fromkeys((1, 2), 1.01),
        }
    )
    (choice,) = choose_all(rows, 2, [], "dm_mean")["S"]
    assert choice.label == "mean(ets,linear)"  # seasonal naive does not beat naive
    assert choice.evidence["p_reference_worse"]["seasonal_naive"] > 0.1
    walk = _rows({"naive": {1: 1.0}, "linear": {1: 0.99}}, seed=2)
    assert choose_all(walk, 1, [], "dm_mean")["S"][0].label == "naive"


def test_dm_combination_keeps_the_mean_unless_one_model_is_clearly_better() -> None:
    def rows_with_points(spread: dict[str, float]) -> pd.DataFrame:
        """Rows whose point forecasts miss the actual 100 by a model's own error."""
        rng = np.random.default_rng(0)
        out = []
        for w in range(40):
            noise = rng.normal(0, 1)
            for model, miss in spread.items():
                yhat = 100 + miss * (1 + 0.2 * noise) * (1 if w % 2 else -1)
                out.append(
                    {
                        schema.SERIES_ID: "S",
                        "forecast_date": pd.Timestamp("2021-01-04") + pd.offsets.BDay(w),
                        "horizon": 1,
                        "model": model,
                        "yhat": yhat,
                        "actual": 100.0,
                        "abs_error": abs(yhat - 100),
                        "scaled_error": abs(yhat - 100) / 2,
                    }
                )
        return pd.DataFrame(out)

    # errors of the same sign and size: the mean is no better, and ets is clearly best
    clear = rows_with_points({"ets": 0.5, "naive": 3.0, "linear": 3.2})
    (choice,) = choose_all(clear, 1, [], "dm_combination")["S"]
    assert choice.label == "ets" and choice.evidence["p_worse_than_best"]["mean"] < 0.1
    # comparable models whose errors differ in sign: the mean stays
    close = rows_with_points({"ets": 1.0, "naive": -1.05, "linear": 1.1})
    assert choose_all(close, 1, [], "dm_combination")["S"][0].label == "mean(ets,linear,naive)"


def test_fallback_is_the_margin_rule_among_the_models_that_forecast_tonight() -> None:
    mase = {"ets": 0.7, "linear": 0.8, "naive": 1.0, "arima": 1.1}
    chosen = Choice("FR", 6, 14, "margin", {"ets": 1.0}, {"mase": mase, "windows": 40})
    instead = fallback(chosen, {"linear", "naive", "arima"}, "naive", 0.1)
    assert instead is not None
    assert (instead.series_id, instead.first, instead.last) == ("FR", 6, 14)
    assert (instead.weights, instead.rule) == ({"linear": 1.0}, "margin+fallback")
    assert instead.evidence["fallback"] == {"chosen": "ets", "missing": ["ets"]}
    assert instead.evidence["mase"] == mase and instead.evidence["windows"] == 40
    close = Choice("FR", 6, 14, "margin", {"ets": 1.0}, {"mase": {**mase, "linear": 0.95}})
    assert fallback(close, {"linear", "naive"}, "naive", 0.1).weights == {"naive": 1.0}
    assert fallback(chosen, {"linear", "arima"}, "naive", 0.1).weights == {"linear": 1.0}
    assert fallback(chosen, {"lstm"}, "naive", 0.1) is None  # lstm was never scored here
