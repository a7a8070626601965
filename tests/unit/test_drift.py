"""Drift metrics: PSI and KS against hand-computed values, and the per-series drift table."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from pipeline_lib.drift import DRIFT_COLUMNS, drift_table, ks, psi


def test_psi_matches_hand_computation() -> None:
    # reference [1, 2, 3, 4], bins=2: quantiles at 0, .5, 1 are 1, 2.5, 4, so one inner edge
    # 2.5 and bins (-inf, 2.5), [2.5, inf). Counts: reference [2, 2]; current [1, 3, 3, 4]: [1, 3].
    # Without smoothing: r = [0.5, 0.5], c = [0.25, 0.75],
    # PSI = (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.173287 + 0.101366
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert expected == pytest.approx(0.274653, abs=1e-6)
    ref, cur = np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 3, 4])
    assert psi(ref, cur, bins=2, smoothing=0.0) == pytest.approx(expected)
    # With the default 0.5 pseudo-count: r = [2.5, 2.5] / 5 = [0.5, 0.5], c = [1.5, 3.5] / 5,
    # PSI = (0.3 - 0.5) ln(0.3 / 0.5) + (0.7 - 0.5) ln(0.7 / 0.5) = 0.102165 + 0.067294
    smoothed = -0.2 * math.log(0.6) + 0.2 * math.log(1.4)
    assert smoothed == pytest.approx(0.169459, abs=1e-6)
    assert psi(ref, cur, bins=2) == pytest.approx(smoothed)


def test_psi_smooths_empty_bins() -> None:
    # r = [0.5, 0.5]; current [1, 2] all below 2.5: counts [2, 0] -> c = [2.5, 0.5] / 3.
    # PSI = (5/6 - 1/2) ln((5/6) / (1/2)) + (1/6 - 1/2) ln((1/6) / (1/2)) = 0.170275 + 0.366204
    expected = (5 / 6 - 0.5) * math.log(5 / 3) + (1 / 6 - 0.5) * math.log(1 / 3)
    assert expected == pytest.approx(0.536479, abs=1e-6)
    assert psi(np.array([1.0, 2, 3, 4]), np.array([1.0, 2]), bins=2) == pytest.approx(expected)


def test_psi_of_identical_samples_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=500)
    assert psi(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert psi(np.ones(10), np.ones(10)) == pytest.approx(0.0, abs=1e-12)  # constant reference


def test_psi_ignores_nans_and_rejects_empty() -> None:
    assert psi(np.array([1.0, 2, np.nan, 3, 4]), np.array([1.0, 3, 3, 4]), bins=2) == pytest.approx(
        0.169459, abs=1e-6
    )
    with pytest.raises(ValueError):
        psi(np.array([np.nan]), np.array([1.0]))


def test_ks_matches_hand_computation() -> None:
    # ECDFs of [1, 2, 3, 4] and [3, 4, 5, 6]: at x=2, 0.5 vs 0; at x=3, 0.75 vs 0.25;
    # at x=4, 1 vs 0.5. The largest gap is D = 0.5.
    stat, pvalue = ks(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6]))
    assert stat == pytest.approx(0.5)
    assert 0.0 < pvalue <= 1.0
    # disjoint samples: D = 1
    assert ks(np.array([1.0, 2, 3]), np.array([4.0, 5, 6]))[0] == pytest.approx(1.0)


def make_features(n_days: int = 365, shift: float = 1.5) -> pd.DataFrame:
    """Two series over n_days: STABLE is stationary, SHIFTED's mean jumps in the last 121 days.

    Windows are long on purpose: PSI's small-sample bias is about (bins - 1) * (1/n + 1/m),
    so 10 bins over a 30-day window would exceed 0.2 on pure noise.
    """
    rng = np.random.default_rng(42)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    frames = []
    for series, jump in (("STABLE", 0.0), ("SHIFTED", shift)):
        x = rng.normal(size=n_days)
        x[-121:] += jump
        frames.append(
            pd.DataFrame(
                {
                    "series_id": series,
                    "date": dates,
                    "x": x,
                    "sparse": np.where(np.arange(n_days) % 60 == 0, 1.0, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


REFERENCE = (dt.date(2024, 1, 1), dt.date(2024, 8, 31))  # days 0..243
RECENT = (dt.date(2024, 9, 1), dt.date(2024, 12, 30))  # days 244..364, the last 121


def test_drift_table_flags_the_shifted_series_only() -> None:
    features = make_features()
    before = features.copy()
    out = drift_table(
        features,
        ["x", "sparse"],
        REFERENCE,
        RECENT,
        psi_bins=10,
        psi_threshold=0.2,
        ks_pvalue_threshold=0.01,
    )
    pd.testing.assert_frame_equal(features, before)  # input untouched
    assert list(out.columns) == DRIFT_COLUMNS
    # "sparse" has 2 values in the recent window (< 5): skipped. 2 series x 1 feature x 3 metrics.
    assert out.shape == (6, 6)
    assert list(out["series_id"]) == ["SHIFTED"] * 3 + ["STABLE"] * 3
    assert list(out["metric"]) == ["psi", "ks_statistic", "ks_pvalue"] * 2
    flags = out.set_index(["series_id", "metric"])["is_drift"]
    assert flags.loc["SHIFTED"].all()
    assert not flags.loc["STABLE"].any()
    values = out.set_index(["series_id", "metric"])
    assert values.loc[("SHIFTED", "psi"), "value"] > 0.2
    assert values.loc[("SHIFTED", "ks_pvalue"), "value"] < 0.01
    assert values.loc[("STABLE", "ks_pvalue"), "value"] >= 0.01


def test_drift_table_thresholds() -> None:
    out = drift_table(
        make_features(),
        ["x"],
        REFERENCE,
        RECENT,
        psi_bins=5,
        psi_threshold=0.5,
        ks_pvalue_threshold=0.05,
    )
    th = out.set_index(["series_id", "metric"])["threshold"]
    assert th.loc[("STABLE", "psi")] == 0.5
    assert th.loc[("STABLE", "ks_pvalue")] == 0.05
    assert pd.isna(th.loc[("STABLE", "ks_statistic")])
    for _, row in out[out["metric"] == "psi"].iterrows():
        assert row["is_drift"] == (row["value"] > 0.5)
    ks_rows = out[out["metric"] != "psi"].pivot(
        index="series_id", columns="metric", values="is_drift"
    )
    assert (ks_rows["ks_statistic"] == ks_rows["ks_pvalue"]).all()
    # an impossible PSI threshold never flags
    calm = drift_table(make_features(), ["x"], REFERENCE, RECENT, psi_threshold=1e9)
    assert not calm[calm["metric"] == "psi"]["is_drift"].any()


def test_drift_table_is_deterministic_and_handles_empty_windows() -> None:
    features = make_features()
    a = drift_table(features, ["x"], REFERENCE, RECENT)
    b = drift_table(features.sample(frac=1.0, random_state=1), ["x"], REFERENCE, RECENT)
    pd.testing.assert_frame_equal(a, b)
    empty = drift_table(features, ["x"], REFERENCE, (dt.date(2030, 1, 1), dt.date(2030, 2, 1)))
    assert empty.empty and list(empty.columns) == DRIFT_COLUMNS
    with pytest.raises(ValueError, match="lacks columns"):
        drift_table(features, ["nope"], REFERENCE, RECENT)
