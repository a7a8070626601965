"""The linear baseline's per-origin forecast cache: a later night reuses the origins it already
forecast and gives exactly what a fresh model gives; a revised row recomputes its origin and the
later ones only; a torn file is recomputed, never trusted."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.linear_baseline import LinearLags
from pipeline_lib.forecasting.origin_cache import prefix_fingerprints

LOAD = FeatureSet.of(future=[("load", 1)])
HORIZON = 3


def _frame(n: int = 420, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n + 1)
    y = 50 + np.cumsum(rng.normal(0, 0.5, n)) + 10 * x[:n]
    dates = pd.date_range("2022-01-01", periods=n, freq="D")
    frames = [
        pd.DataFrame({"series_id": sid, "date": dates, "y": y + k, "load": x[:n], "load@1": x[1:]})
        for k, sid in enumerate(["A", "B"])
    ]
    return pd.concat(frames, ignore_index=True)


class Counting(LinearLags):
    """The linear baseline, counting the origins it actually fits."""

    fits = 0

    def _forecast_one(self, s, origin, horizon):  # type: ignore[no-untyped-def]
        type(self).fits += 1
        return super()._forecast_one(s, origin, horizon)


def _backtest(frame: pd.DataFrame, cache: Path | None, last_n: int = 30) -> pd.DataFrame:
    model = Counting(feature_set=LOAD).cache_in(None if cache is None else str(cache))
    return model.fit(frame).backtest(last_n=last_n, horizon=HORIZON, step=1, frequency="D")


def test_a_later_night_reuses_the_origins_already_forecast(tmp_path: Path) -> None:
    frame = _frame()
    night1 = frame.loc[frame["date"] < frame["date"].max()]  # one row fewer per series
    Counting.fits = 0
    _backtest(night1, tmp_path)
    assert Counting.fits == 2 * 30
    Counting.fits = 0
    cached = _backtest(frame, tmp_path)
    assert Counting.fits == 2 * 1  # only each series' new origin
    Counting.fits = 0
    fresh = _backtest(frame, None)
    assert Counting.fits == 2 * 30
    pd.testing.assert_frame_equal(cached, fresh)
    assert sorted(p.name for p in tmp_path.rglob("*.npz")) == ["A.npz", "B.npz"]


def test_a_revised_row_recomputes_its_origin_and_the_later_ones_only(tmp_path: Path) -> None:
    frame = _frame()
    _backtest(frame, tmp_path)
    revised = frame.copy()
    dates = sorted(frame["date"].unique())
    day = dates[-10]  # inside the last 30 origins: origins from it on read it
    revised.loc[(revised["series_id"] == "A") & (revised["date"] == day), "load@1"] += 3.0
    Counting.fits = 0
    cached = _backtest(revised, tmp_path)
    origins = cached.loc[cached["series_id"] == "A", "forecast_date"].unique()
    assert Counting.fits == (origins >= day).sum() == 7  # A's origins from the revised day on
    pd.testing.assert_frame_equal(cached, _backtest(revised, None))


def test_a_changed_setting_or_a_torn_file_is_recomputed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame = _frame()
    _backtest(frame, tmp_path)
    Counting.fits = 0
    other = Counting(feature_set=LOAD, lags=(1, 7)).cache_in(str(tmp_path))
    other.fit(frame).backtest(last_n=30, horizon=HORIZON, step=1, frequency="D")
    assert Counting.fits == 2 * 30  # another digest, another folder
    for path in tmp_path.rglob("A.npz"):
        path.write_bytes(b"not a cache file")
    Counting.fits = 0
    with caplog.at_level(logging.WARNING, logger="pipeline_lib.forecasting.origin_cache"):
        again = _backtest(frame, tmp_path)
    assert Counting.fits == 30  # series A recomputed, B from its file
    assert "unreadable, recomputing" in caplog.text
    pd.testing.assert_frame_equal(again, _backtest(frame, None))


def test_a_prefix_fingerprint_changes_from_the_changed_row_on() -> None:
    dates = pd.date_range("2024-01-01", periods=50, freq="D").to_numpy()
    y = np.linspace(1, 2, 50)
    covariates = np.column_stack([np.sin(np.arange(50)), np.full(50, np.nan)])
    before = prefix_fingerprints(dates, y, covariates)
    changed = covariates.copy()
    changed[20, 1] = 1.0  # a value that was missing arrives
    after = prefix_fingerprints(dates, y, changed)
    assert (before[:20] == after[:20]).all() and (before[20:] != after[20:]).all()
    assert len(set(before.tolist())) == 50
