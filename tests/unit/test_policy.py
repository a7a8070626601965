"""The retraining policy's verdict: which drift and decay flags count, and when they trigger."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pipeline_lib.config import RetrainPolicyConfig, load_settings
from pipeline_lib.monitoring import policy
from pipeline_lib.monitoring.drift import DRIFT_COLUMNS, drift_table

CFG = RetrainPolicyConfig()


def _rows(*rows: tuple[str, str, str, float, bool]) -> pd.DataFrame:
    return pd.DataFrame(
        [(s, f, m, v, 1.0, flag) for s, f, m, v, flag in rows], columns=DRIFT_COLUMNS
    )


def _input(series: str, feature: str, flagged: int) -> list[tuple[str, str, str, float, bool]]:
    """A (series, feature) with its first ``flagged`` thresholded metrics flagged."""
    return [
        (series, feature, m, float(i), i < flagged) for i, m in enumerate(policy.AGREEING_METRICS)
    ]


def test_input_drift_counts_when_enough_metrics_agree_on_a_watched_feature() -> None:
    rows = _rows(
        *_input("A", "log_return", 3),  # drifted: 3 of 5 agree
        *_input("B", "log_return", 2),  # not enough agreement
        *_input("C", "y", 5),  # not watched by default
        ("D", "log_return", "ks_statistic", 0.9, True),  # carries the p-value's flag
        ("D", "log_return", "ks_pvalue", 0.0, True),
    )
    verdict = policy.assess(rows, CFG)
    assert [(f.series_id, f.feature) for f in verdict.drifted] == [("A", "log_return")]
    assert verdict.drifted[0].metrics == {"psi": 0.0, "ks_pvalue": 1.0, "wasserstein_std": 2.0}
    assert verdict.retrain and verdict.trigger == "drift"
    assert verdict.reason.startswith("new input drift on 1 watched (series, feature)")
    assert "A log_return (psi 0, ks_pvalue 1, wasserstein_std 2)" in verdict.reason

    watched_y = CFG.model_copy(update={"watch_features": ["y"], "input_drift_count": 2})
    y_only = policy.assess(rows, watched_y)
    assert [f.series_id for f in y_only.drifted] == ["C"] and not y_only.retrain
    assert y_only.reason == (
        "1 newly drifted (series, feature), 2 needed; 0 newly decayed series, 2 needed"
    )


def test_decay_counts_series_on_all_horizons_only() -> None:
    rows = _rows(
        ("A", "forecast_error", "mase_ratio", 1.5, True),
        ("A", "forecast_error", "mase", 0.9, True),  # descriptive, carries the ratio's flag
        ("B", "forecast_error", "coverage_gap", -0.3, True),
        ("C", "forecast_error_h3", "mase_ratio", 2.0, True),  # one horizon: shown, not counted
        ("D", "forecast_error", "mase_ratio", 1.1, False),
    )
    verdict = policy.assess(rows, CFG)
    assert [f.series_id for f in verdict.decayed] == ["A", "B"]
    assert verdict.decayed[0].metrics == {"mase_ratio": 1.5}
    assert verdict.retrain and verdict.trigger == "decay"
    only_ratio = CFG.model_copy(update={"decay_metrics": ["mase_ratio"]})
    assert not policy.assess(rows, only_ratio).retrain  # one series of the two needed


def test_both_triggers_zero_counts_and_the_switch() -> None:
    rows = _rows(
        *_input("A", "log_return", 5),
        ("A", "forecast_error", "mase_ratio", 1.5, True),
        ("B", "forecast_error", "mase_ratio", 1.6, True),
    )
    both = policy.assess(rows, CFG)
    assert both.trigger == "drift+decay" and " and new decay on 2 series" in both.reason
    off = CFG.model_copy(update={"input_drift_count": 0, "decay_count": 0})
    silent = policy.assess(rows, off)
    assert not silent.retrain and "not a trigger" in silent.reason
    assert len(silent.drifted) == 1 and len(silent.decayed) == 2  # still counted, for the record
    disabled = policy.assess(rows, CFG.model_copy(update={"enabled": False}))
    assert not disabled.retrain and "enabled = false" in disabled.reason
    assert policy.assess(pd.DataFrame(columns=DRIFT_COLUMNS), CFG).retrain is False


def test_flags_known_at_the_last_full_training_do_not_count_again() -> None:
    rows = _rows(
        *_input("A", "log_return", 4),
        ("A", "forecast_error", "mase_ratio", 1.5, True),
        ("B", "forecast_error", "mase_ratio", 1.6, True),
    )
    first = policy.assess(rows, CFG)
    assert first.trigger == "drift+decay"
    known = first.keys()
    assert known == [
        ["input_drift", "A", "log_return"],
        ["decay", "A", "forecast_error"],
        ["decay", "B", "forecast_error"],
    ]
    again = policy.assess(rows, CFG, known)
    assert not again.retrain and all(not f.new for f in (*again.drifted, *again.decayed))
    assert again.reason.endswith("3 flag(s) already present at the last full training")
    # a new series decaying beside a known one: 1 new of the 2 needed
    partly = policy.assess(rows, CFG, [k for k in known if k[1] != "B"])
    assert not partly.retrain and [f.series_id for f in partly.decayed if f.new] == ["B"]


def test_a_planted_mean_shift_drifts_and_a_stationary_series_does_not() -> None:
    """Real drift rows: two series of Gaussian log returns, one whose recent mean moves by one
    reference std; only that one counts."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2021-01-04", periods=819)
    values = rng.normal(size=(2, dates.size))
    values[1, 756:] += values[1, :756].std(ddof=1)
    features = pd.DataFrame(
        {
            "series_id": np.repeat(["CALM", "SHIFTED"], dates.size),
            "date": np.tile(dates, 2),
            "log_return": values.ravel(),
        }
    )
    rows = drift_table(
        features,
        ["log_return"],
        (dates[0].date(), dates[755].date()),
        (dates[756].date(), dates[-1].date()),
        psi_bins=5,
    )
    verdict = policy.assess(rows, CFG)
    assert [f.series_id for f in verdict.drifted] == ["SHIFTED"]
    assert verdict.retrain and verdict.trigger == "drift"


def test_the_config_refuses_unknown_features_and_counts() -> None:
    with pytest.raises(ValidationError, match="unknown features \\['close'\\]"):
        RetrainPolicyConfig(watch_features=["close"])
    with pytest.raises(ValidationError, match="min_agreeing_metrics"):
        RetrainPolicyConfig(min_agreeing_metrics=6)
    settings = load_settings(
        data_dir="/tmp/unused", retrain_policy={"watch_features": ["y"], "cooldown_days": 3}
    )
    assert settings.retrain_policy.cooldown_days == 3


def test_in_a_large_panel_a_share_of_the_checked_pairs_and_series_is_needed() -> None:
    """One drifted pair of 30, or two decayed series of 12, is what chance gives a panel: the
    trigger needs input_drift_share (0.1) of the pairs and decay_share (0.25) of the series."""

    def night(drifted: int, decayed: int) -> pd.DataFrame:
        rows = [r for i in range(30) for r in _input(f"S{i:02d}", "log_return", 5 * (i < drifted))]
        rows += [
            (f"S{i:02d}", "forecast_error", "mase_ratio", 1.5 if i < decayed else 1.0, i < decayed)
            for i in range(12)
        ]
        return _rows(*rows)

    assert policy.checked_pairs(night(0, 0), CFG) == 30
    assert policy.checked_series(night(0, 0)) == 12
    two = policy.assess(night(2, 2), CFG)
    assert not two.retrain and len(two.drifted) == 2 and len(two.decayed) == 2
    assert "2 newly drifted (series, feature), 3 needed" in two.reason
    assert "2 newly decayed series, 3 needed" in two.reason
    three = policy.assess(night(3, 3), CFG)
    assert three.trigger == "drift+decay"
    assert "(3 needed: input_drift_share=0.1 of 30 checked)" in three.reason
    assert "(3 needed: decay_share=0.25 of 12 checked)" in three.reason
    # a share of 0 is the fixed count alone; a count of 0 is still "never"
    fixed = CFG.model_copy(update={"input_drift_share": 0.0, "decay_share": 0.0})
    assert policy.assess(night(1, 2), fixed).trigger == "drift+decay"
    assert policy.needed(0, 0.5, 100) == 0
    assert [policy.needed(1, 0.1, n) for n in (4, 10, 11, 100)] == [1, 1, 2, 10]
