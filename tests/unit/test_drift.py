"""Drift metrics against hand-computed values (scipy where the metric is scipy's), the per-series
drift table, and planted drift against stationary series."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline_lib.config import DriftConfig
from pipeline_lib.monitoring.drift import (
    DRIFT_COLUMNS,
    DRIFT_METRICS,
    compare,
    drift_frame,
    drift_table,
    ks,
    ks_many,
    mean_shift,
    psi,
    std_ratio,
    wasserstein_std,
)


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


def test_ks_many_gives_each_pairs_ks() -> None:
    rng = np.random.default_rng(7)
    pairs = [
        (rng.normal(size=40), rng.normal(0.5, 1.0, size=12)),
        (rng.normal(size=40), rng.normal(size=12)),  # the same sizes: one scipy call for both
        (np.round(rng.normal(size=30)), np.round(rng.normal(size=9))),  # ties
        (np.ones(8), np.array([1.0, 1, 1, 2, 2])),  # a constant reference
        (np.array([1.0, 2, 3]), np.array([4.0, 5, 6])),
    ]
    assert ks_many(pairs) == [ks(ref, cur) for ref, cur in pairs]
    assert ks_many([]) == []


def test_drift_table_gives_each_series_and_features_compare() -> None:
    features = make_features()
    features.loc[features.index[::5], "x"] = np.nan  # fewer values in some windows
    features["text"] = features["x"].map(lambda v: "n/a" if v > 1.5 else str(v))
    names = ["x", "text"]
    table = drift_table(features, names, REFERENCE, RECENT)
    dates = pd.to_datetime(features["date"])
    expected = []
    for series in ("SHIFTED", "STABLE"):
        rows = features[features["series_id"] == series]
        for name in names:
            values = pd.to_numeric(rows[name], errors="coerce")
            ref = values[dates[rows.index].between(*map(pd.Timestamp, REFERENCE))].dropna()
            cur = values[dates[rows.index].between(*map(pd.Timestamp, RECENT))].dropna()
            for row in compare(ref.to_numpy(), cur.to_numpy()):
                expected.append((series, name, *row))
    pd.testing.assert_frame_equal(table, drift_frame(expected), check_exact=True)


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
    # "sparse" has 2 values in the recent window (< 5): skipped. 2 series x 1 feature x 6 metrics.
    assert out.shape == (12, 6)
    assert list(out["series_id"]) == ["SHIFTED"] * 6 + ["STABLE"] * 6
    assert list(out["metric"]) == DRIFT_METRICS * 2
    flags = out.set_index(["series_id", "metric"])["is_drift"]
    # a pure mean shift: every location metric flags it, the spread does not change
    assert flags.loc["SHIFTED"].drop("std_ratio").all()
    assert not flags.loc[("SHIFTED", "std_ratio")]
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


REF4 = np.array([1.0, 2, 3, 4])  # mean 2.5, sample std sqrt(5/3) = 1.290994
STD4 = math.sqrt(5 / 3)


def test_wasserstein_std_matches_scipy_over_the_reference_std() -> None:
    # [3, 4, 5, 6] is REF4 moved by 2: every unit of mass travels 2, W1 = 2
    cur = np.array([3.0, 4, 5, 6])
    assert stats.wasserstein_distance(REF4, cur) == pytest.approx(2.0)
    assert wasserstein_std(REF4, cur) == pytest.approx(2.0 / STD4)
    assert 2.0 / STD4 == pytest.approx(1.549193, abs=1e-6)
    # [1, 1, 4, 4]: the sorted samples differ by 0, 1, 1, 0: W1 = 2 / 4 = 0.5
    other = np.array([1.0, 1, 4, 4])
    assert stats.wasserstein_distance(REF4, other) == pytest.approx(0.5)
    assert wasserstein_std(REF4, other) == pytest.approx(0.5 / STD4)
    assert wasserstein_std(REF4, REF4[::-1].copy()) == pytest.approx(0.0)
    assert wasserstein_std(np.array([1.0, np.nan, 2, 3, 4]), cur) == pytest.approx(2.0 / STD4)


def test_mean_shift_and_std_ratio_by_hand() -> None:
    # means 4.5 vs 2.5: (4.5 - 2.5) / 1.290994
    assert mean_shift(REF4, np.array([3.0, 4, 5, 6])) == pytest.approx(2.0 / STD4)
    assert mean_shift(REF4, np.array([0.0, 1, 2, 3])) == pytest.approx(-1.0 / STD4)
    assert mean_shift(REF4, np.array([1.0, 1, 4, 4])) == pytest.approx(0.0)
    # [2, 4, 6, 8] is 2 x REF4: twice the std; [1, 1, 4, 4]: std sqrt(3) -> sqrt(3 / (5/3))
    assert std_ratio(REF4, np.array([2.0, 4, 6, 8])) == pytest.approx(2.0)
    assert std_ratio(REF4, np.array([1.0, 1, 4, 4])) == pytest.approx(math.sqrt(9 / 5))
    assert std_ratio(REF4, np.array([5.0, 6, 7, 8])) == pytest.approx(1.0)


def test_compare_flags_each_metric_at_its_threshold() -> None:
    def flags(cur: np.ndarray, **kw: float) -> dict[str, tuple[float, float | None, bool]]:
        return {m: (v, t, f) for m, v, t, f in compare(REF4, cur, psi_bins=2, **kw)}

    shifted = flags(np.array([3.0, 4, 5, 6]), mean_shift_threshold=1.5, wasserstein_threshold=1.6)
    assert list(shifted) == DRIFT_METRICS
    assert shifted["mean_shift"] == (pytest.approx(1.549193, abs=1e-6), 1.5, True)
    assert shifted["wasserstein_std"][1:] == (1.6, False)  # 1.549 is not above 1.6
    assert shifted["std_ratio"][2] is False  # same spread
    ks_stat, ks_p = ks(REF4, np.array([3.0, 4, 5, 6]))
    assert shifted["ks_statistic"] == (pytest.approx(ks_stat), None, ks_p < 0.01)
    # below: |-0.77| is above 0.5; std_ratio outside [1/1.5, 1.5] on both sides
    assert flags(np.array([0.0, 1, 2, 3]))["mean_shift"][2] is True
    assert flags(np.array([2.0, 4, 6, 8]))["std_ratio"][2] is True  # 2.0 > 1.5
    assert flags(np.array([2.0, 2.5, 3, 3.5]))["std_ratio"][2] is True  # 0.5 < 1/1.5
    assert flags(np.array([1.0, 2.2, 3.4, 4.6]))["std_ratio"][2] is False  # 1.2
    only = compare(REF4, np.array([3.0, 4, 5, 6]), metrics=["ks_pvalue", "mean_shift"])
    assert [row[0] for row in only] == ["ks_statistic", "ks_pvalue", "mean_shift"]
    with pytest.raises(ValueError, match="unknown drift metrics"):
        compare(REF4, REF4, metrics=["nope"])
    with pytest.raises(ValueError, match="above 1"):
        compare(REF4, REF4, std_ratio_threshold=1.0)


def test_constant_reference_gives_nan_values_flagged_only_on_a_change() -> None:
    same = {m: (v, f) for m, v, _, f in compare(np.ones(10), np.ones(6))}
    moved = {m: (v, f) for m, v, _, f in compare(np.ones(10), np.array([1.0, 1, 1, 1, 1, 2]))}
    for metric in ("wasserstein_std", "mean_shift", "std_ratio"):
        assert math.isnan(same[metric][0]) and same[metric][1] is False
        assert math.isnan(moved[metric][0]) and moved[metric][1] is True


# Realistic lengths: ~3 years of business days of reference, the last 90 days (~63 business
# days) recent.
N_REF, N_RECENT = 756, 63


def planted(n_series: int, shift: float, seed: int = 7) -> tuple[pd.DataFrame, tuple, tuple]:
    """n_series iid N(0, 1) series; the recent window's mean moved by ``shift`` std."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=N_REF + N_RECENT)
    x = rng.normal(size=(n_series, dates.size))
    x[:, N_REF:] += shift
    frame = pd.DataFrame(
        {
            "series_id": np.repeat([f"S{i:03d}" for i in range(n_series)], dates.size),
            "date": np.tile(dates, n_series),
            "x": x.ravel(),
        }
    )
    windows = (dates[0].date(), dates[N_REF - 1].date()), (dates[N_REF].date(), dates[-1].date())
    return frame, *windows


def _defaults() -> dict[str, float]:
    cfg = DriftConfig()
    return {
        "psi_bins": cfg.psi_bins,
        "psi_threshold": cfg.psi_threshold,
        "ks_pvalue_threshold": cfg.ks_pvalue_threshold,
        "wasserstein_threshold": cfg.wasserstein_threshold,
        "mean_shift_threshold": cfg.mean_shift_threshold,
        "std_ratio_threshold": cfg.std_ratio_threshold,
    }


def test_planted_mean_shift_of_one_std_is_flagged_at_the_defaults() -> None:
    features, reference, recent = planted(20, shift=1.0)
    out = drift_table(features, ["x"], reference, recent, **_defaults())
    rate = out.groupby("metric")["is_drift"].mean()
    for metric in ("psi", "ks_pvalue", "wasserstein_std", "mean_shift"):
        assert rate[metric] == 1.0, metric
    assert rate["std_ratio"] == 0.0  # the spread did not change
    shift = out.loc[out["metric"] == "mean_shift", "value"]
    assert shift.between(0.6, 1.4).all()


def test_stationary_series_rarely_raise_a_false_alarm() -> None:
    # 200 stationary series (seeded): the false-alarm rate of each metric at the defaults
    # (bench/drift_false_alarms.py measures it over more seeds and processes)
    features, reference, recent = planted(200, shift=0.0)
    out = drift_table(features, ["x"], reference, recent, **_defaults())
    rate = out.groupby("metric")["is_drift"].mean()
    assert (rate <= 0.03).all(), rate.to_dict()
    any_flag = out.groupby("series_id")["is_drift"].any().mean()
    assert any_flag <= 0.05
