"""statsforecast baselines (AutoETS, AutoARIMA): fitted once at the fit end, forward to each
origin, bands from statsforecast's intervals at the configured quantiles, no leakage."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import load_settings
from pipeline_lib.errors import ConfigError
from pipeline_lib.forecasting.backtest import FitWindows, make_baseline
from pipeline_lib.forecasting.ets_arima import ARIMA, ETS, weekly_pattern
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.statistical import _levels
from pipeline_lib.forecasting.statistical_fits import Fitted, fit_point, load_fit, search_point

QUANTILES = (0.1, 0.5, 0.9)
# a series id whose refit steps fall on multiples of 20 rows (fit_point's offset 0)
ALIGNED = next(f"S{i}" for i in range(1000) if fit_point(20, 20, f"S{i}") == 20)
# fit points 20 rows apart (shorter test series), each a search (the searches kept between
# fit points: test_a_fit_between_search_points_keeps_the_searched_form)
EVERY_20 = FitWindows(statistical_refit=20, statistical_search=1)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return random_walk_features(n_series=2, n_days=260, seed=5)


def test_quantiles_map_to_statsforecast_intervals() -> None:
    assert _levels((0.1, 0.5, 0.9)) == ["lo-80", "mean", "hi-80"]
    assert _levels((0.05, 0.5, 0.75)) == ["lo-90", "mean", "hi-50"]
    assert _levels((0.025, 0.4, 0.975)) == ["lo-95", "lo-20", "hi-95"]


def test_weekly_pattern_is_found_in_the_changes_only_where_there_is_one() -> None:
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 1, 500))
    assert not weekly_pattern(walk, 5)  # a random walk's levels are not a season
    weekly = walk + 3 * np.tile([0, 1, 2, 1, -4], 100)
    assert weekly_pattern(weekly, 5)
    assert not weekly_pattern(weekly[:8], 5)  # too short to tell


@pytest.mark.parametrize("name", ["ets", "arima"])
def test_forecasts_use_only_rows_up_to_the_origin_and_the_fit_end(
    features: pd.DataFrame, name: str
) -> None:
    fit_end = pd.Timestamp(features[schema.DATE].iloc[199])
    as_of = pd.Timestamp(features[schema.DATE].iloc[229]).date()
    full = make_baseline(name, QUANTILES, fit_end.date(), windows=EVERY_20).fit(features)
    out = full.predict(as_of, 5, "B")
    assert set(out[schema.SERIES_ID]) == {"S0", "S1"} and len(out) == 10
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    assert (out["yhat_upper"] - out["yhat_lower"]).gt(0).all()
    # rows after the forecast date change nothing
    cut = features.loc[features[schema.DATE] <= pd.Timestamp(as_of)]
    again = make_baseline(name, QUANTILES, fit_end.date(), windows=EVERY_20).fit(cut)
    again = again.predict(as_of, 5, "B")
    pd.testing.assert_frame_equal(out, again)
    # a later fit end is another model: the fit end is what the parameters saw
    later = make_baseline(name, QUANTILES, as_of, windows=EVERY_20).fit(features)
    later = later.predict(as_of, 5, "B")
    assert not np.allclose(later["yhat_upper"], out["yhat_upper"])
    # origins before the fit end would be in sample: no forecast from them
    early = pd.Timestamp(features[schema.DATE].iloc[150]).date()
    assert full.predict(early, 5, "B").empty


def test_one_fit_per_series_serves_every_origin(features: pd.DataFrame) -> None:
    dates = features.loc[features[schema.SERIES_ID] == "S0", schema.DATE].to_numpy()
    model = ETS(quantiles=QUANTILES).at(dt.date(2020, 9, 1)).fit(features)
    out = model.predict_at({"S0": dates[-40:-5]}, 5, "B")
    assert out["forecast_date"].nunique() == 35
    assert len(model._fitted) == 1  # memoised: one model for all 35 origins
    assert all(m is not None for m in model._fitted.values())


def test_a_series_with_too_little_history_or_a_failed_fit_gets_no_forecast(
    features: pd.DataFrame,
) -> None:
    short = features.groupby(schema.SERIES_ID).head(30)
    assert ARIMA(quantiles=QUANTILES).fit(short).predict(dt.date(2021, 1, 1), 5).empty
    flat = features.assign(**{schema.Y: 5.0})
    out = ETS(quantiles=QUANTILES).fit(flat).predict(dt.date(2021, 1, 1), 5)
    assert out.empty or np.allclose(out["yhat"], 5.0)


def test_the_cache_keeps_fits_and_forecasts_and_refits_on_other_rows(
    features: pd.DataFrame, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = str(tmp_path / "statistical")
    fit_end = pd.Timestamp(features[schema.DATE].iloc[209]).date()
    as_of = pd.Timestamp(features[schema.DATE].iloc[229]).date()

    def night(frame: pd.DataFrame, day: dt.date, where: str | None = cache) -> pd.DataFrame:
        model = make_baseline("arima", QUANTILES, fit_end, where, windows=EVERY_20)
        return model.fit(frame).predict(day, 5, "B")

    first = night(features, as_of)
    files = sorted((tmp_path / "statistical" / "arima").rglob("*.pkl"))
    assert [f.parent.name for f in files] == ["S0", "S1"]
    # 210 rows, refit every 20 rows on each series' own steps (200 where the offset is 0)
    assert all(f.name.startswith(f"{fit_point(210, 20, f.parent.name)}-") for f in files)
    pd.testing.assert_frame_equal(first, night(features, as_of, where=None))  # same figures
    # the next night reads the same fit (same file) and adds its own origin's forecast
    before = {f: f.stat().st_mtime_ns for f in files}
    nxt = pd.Timestamp(features[schema.DATE].iloc[230]).date()
    night(features, nxt)
    assert sorted((tmp_path / "statistical" / "arima").rglob("*.pkl")) == files
    assert all(f.stat().st_mtime_ns >= before[f] for f in files)
    # a revised row before the fit point is other data: another fit, another file
    revised = features.copy()
    revised.loc[revised.index[5], schema.Y] *= 1.5
    night(revised, as_of)
    assert len(list((tmp_path / "statistical" / "arima" / "S0").glob("*.pkl"))) == 2
    # a torn cache file is refitted, with a warning, never trusted
    files[1].write_bytes(b"not a pickle")
    with caplog.at_level("WARNING"):
        again = night(features, as_of)
    assert "unreadable, refitting" in caplog.text
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize("name", ["ets", "arima"])
def test_a_fit_window_reads_only_the_newest_rows_before_the_fit_point(name: str) -> None:
    features = random_walk_features(n_series=1, n_days=400, seed=11)
    features[schema.SERIES_ID] = ALIGNED  # its fit points: multiples of 20 rows
    # the first 280 rows 50% higher: a window that starts after them never sees them
    early = features.index < 280
    features.loc[early, schema.Y] *= 1.5
    as_of = pd.Timestamp(features[schema.DATE].iloc[-1]).date()  # 400 rows: the fit point
    windows = FitWindows(statistical=120, statistical_refit=20, statistical_search=1)
    windowed = make_baseline(name, QUANTILES, as_of, windows=windows).fit(features)
    out = windowed.predict(as_of, 5, "B")
    recent = features.iloc[280:]  # the same 120 rows, alone: the same fit and forecast
    alone = make_baseline(name, QUANTILES, as_of, windows=EVERY_20).fit(recent)
    alone = alone.predict(as_of, 5, "B")
    pd.testing.assert_frame_equal(out, alone)
    whole = make_baseline(name, QUANTILES, as_of, windows=EVERY_20).fit(features)
    whole = whole.predict(as_of, 5, "B")
    assert not np.allclose(whole["yhat_upper"], out["yhat_upper"])


def test_a_fit_window_shorter_than_a_fit_needs_is_refused() -> None:
    with pytest.raises(ValueError, match="fit_rows must be 0"):
        ETS(fit_rows=30)
    with pytest.raises(ConfigError, match="statistical_fit_rows"):
        load_settings(backtest={"statistical_fit_rows": 30})
    with pytest.raises(ConfigError, match="statistical_refit_rows"):
        load_settings(backtest={"statistical_refit_rows": 0})
    windows = FitWindows.of(load_settings(backtest={"statistical_refit_rows": 5}).backtest)
    assert make_baseline("ets", QUANTILES, windows=windows).refit_every == 5


def test_fit_points_are_staggered_over_the_series() -> None:
    """With steps of 20 rows, each series is refitted on steps of its own: a night refits about
    one series in 20, not all of them on the same night; the point never reads a row too many."""
    ids = [f"S{i:04d}" for i in range(1000)]
    for rows in (1000, 1001, 1019):
        points = np.array([fit_point(rows, 20, sid) for sid in ids])
        assert ((points <= rows) & (points > rows - 20)).all()
        assert 20 <= (points == rows).sum() <= 80  # about 50 refitted tonight
    # a series keeps its point for 20 nights, then moves 20 rows on; the same id, the same point
    one = [fit_point(rows, 20, "DE") for rows in range(1000, 1041)]
    assert len(set(one)) == 3 and np.diff(sorted(set(one))).tolist() == [20, 20]
    assert fit_point(1234, 20, "DE") == fit_point(1234, 20, "DE")


@pytest.mark.parametrize("name", ["ets", "arima"])
def test_origins_after_a_value_not_above_zero_get_the_raw_scale_fit(name: str, tmp_path) -> None:
    """A log model fitted on positive prices cannot follow a price <= 0 after its fit point:
    the origins after it are forecast by the same rows fitted on the raw scale (so the series
    keeps the model until its next fit point); the origins before it are unchanged."""
    features = random_walk_features(n_series=1, n_days=300, seed=7)
    features[schema.SERIES_ID] = ALIGNED
    dates = features[schema.DATE].to_numpy()
    fit_end = pd.Timestamp(dates[239]).date()  # 240 rows: a fit point of ALIGNED
    dipped = features.copy()
    dipped.loc[dipped.index[260], schema.Y] = -1.0  # a negative price after the fit point
    origins = {ALIGNED: dates[[250, 259, 260, 270]]}

    def forecasts(frame: pd.DataFrame) -> pd.DataFrame:
        model = make_baseline(name, QUANTILES, fit_end, str(tmp_path), windows=EVERY_20)
        return model.fit(frame).predict_at(origins, 5, "B")

    out = forecasts(dipped)
    assert sorted(out["forecast_date"].unique()) == sorted(pd.to_datetime(origins[ALIGNED]))
    plain = forecasts(features)
    before = out["forecast_date"] < pd.Timestamp(dates[260])
    pd.testing.assert_frame_equal(
        out.loc[before].reset_index(drop=True), plain.loc[before].reset_index(drop=True)
    )
    assert out.loc[~before, "yhat"].notna().all()
    fits = sorted(p.name for p in (tmp_path / name / ALIGNED).glob("240-*.pkl"))
    assert len(fits) == 2  # the log fit and the raw-scale one, both at the fit point


def test_search_points_are_every_nth_fit_point_of_the_series() -> None:
    ids = [f"S{i:04d}" for i in range(300)]
    for sid in ids:
        points = sorted({fit_point(rows, 20, sid) for rows in range(200, 600)})
        searched = [search_point(p, 20, 4, sid) for p in points]
        assert all(
            s <= p and (p - s) % 20 == 0 and p - s < 80
            for s, p in zip(searched, points, strict=True)
        )
        assert all(search_point(s, 20, 4, sid) == s for s in searched)  # a search point: itself
        assert np.diff(sorted(set(searched))).tolist() in ([80] * 4, [80] * 5)
        assert all(search_point(p, 20, 1, sid) == p for p in points)  # 1: every point searches
    # staggered too: each series searches once in 80 nights, on a night of its own, spread
    # over the 80 (about 300 / 80 a night), and a quarter of the refits are searches
    nights = np.array(
        [
            [search_point(fit_point(r, 20, sid), 20, 4, sid) == r for sid in ids]
            for r in range(1000, 1080)
        ]
    )
    assert (nights.sum(axis=0) == 1).all() and nights.sum(axis=1).max() <= 12
    at_search = [
        search_point(fit_point(1000, 20, sid), 20, 4, sid) == fit_point(1000, 20, sid)
        for sid in ids
    ]
    assert 50 <= sum(at_search) <= 100


@pytest.mark.parametrize("name", ["ets", "arima"])
def test_a_fit_between_search_points_keeps_the_searched_form(name: str, tmp_path) -> None:
    """At a fit point that is not a search point the model's form (ETS components, ARIMA
    order) is the one its search point chose, its parameters fitted on its own rows; the
    forecasts are the same with or without the cache, and with the search point's fit cached
    or not (whatever a night finds in the models folder, it publishes the same)."""
    features = random_walk_features(n_series=1, n_days=300, seed=3)
    sid = next(  # fit points: multiples of 20; search points: multiples of 80 (240, 160...)
        f"S{i}"
        for i in range(1000)
        if fit_point(240, 20, f"S{i}") == 240 and search_point(240, 20, 4, f"S{i}") == 240
    )
    features[schema.SERIES_ID] = sid
    fit_end = pd.Timestamp(features[schema.DATE].iloc[279]).date()  # 280 rows: searched at 240
    as_of = pd.Timestamp(features[schema.DATE].iloc[289]).date()
    searching = FitWindows(statistical_refit=20, statistical_search=4)

    def night(cache: str | None, windows: FitWindows = searching) -> tuple[pd.DataFrame, dict]:
        model = make_baseline(name, QUANTILES, fit_end, cache, windows=windows).fit(features)
        out = model.predict(as_of, 5, "B")
        return out, {n_fit: f.model for (_, n_fit, _), f in model._fitted.items()}

    out, fits = night(None)
    assert sorted(fits) == [240, 280]
    form = ETS._form if name == "ets" else ARIMA._form
    assert form(fits[280]) == form(fits[240])
    kind = type(fits[280]).__name__
    assert kind == ("AutoETS" if name == "ets" else "ARIMA")  # one form, not a search
    if name == "ets":
        assert fits[280].model != "ZZZ"
    cache = str(tmp_path / "statistical")
    pd.testing.assert_frame_equal(out, night(cache)[0])  # cold cache
    folder = tmp_path / "statistical" / name / sid
    kept = sorted(p.name.split("-")[0] for p in folder.glob("*.pkl"))
    assert kept == ["240", "280"]  # the search point's fit kept too: not searched again
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*.pkl")}
    pd.testing.assert_frame_equal(out, night(cache)[0])  # warm cache: nothing refitted
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*.pkl")} == stamps
    for pkl in folder.glob("240-*.pkl"):
        pkl.unlink()  # the search point's fit gone: the fit point's own file is enough
    pd.testing.assert_frame_equal(out, night(cache)[0])
    assert not list(folder.glob("240-*.pkl"))  # its key names the search point's rows
    for pkl in folder.glob("*.pkl"):
        pkl.unlink()  # both gone: searched again at 240, the same form at 280
    pd.testing.assert_frame_equal(out, night(cache)[0])
    assert sorted(p.name.split("-")[0] for p in folder.glob("*.pkl")) == ["240", "280"]
    # every fit point searching: a search at 280 too
    _, alone = night(None, FitWindows(statistical_refit=20, statistical_search=1))
    assert sorted(alone) == [280]
    assert type(alone[280]).__name__ == ("AutoETS" if name == "ets" else "AutoARIMA")


def test_a_fit_cached_under_an_earlier_class_path_is_read_not_refitted(tmp_path: Path) -> None:
    """Earlier releases pickled a fit as ``pipeline_lib.statistical._Fitted`` (before the
    stage folders); such a file is read as a :class:`Fitted`, not refitted on every series."""
    import pickle
    import sys
    import types
    from dataclasses import dataclass, field

    old = types.ModuleType("pipeline_lib.statistical")

    @dataclass
    class _Fitted:
        digest: str
        model: Any
        use_log: bool
        forecasts: dict = field(default_factory=dict)
        url: str | None = None

    _Fitted.__module__, _Fitted.__qualname__ = old.__name__, "_Fitted"
    old._Fitted = _Fitted
    sys.modules[old.__name__] = old
    try:
        data = pickle.dumps(_Fitted("abc", {"alpha": 0.3}, True, {(1, 2, "k"): np.ones(3)}))
    finally:
        del sys.modules[old.__name__]
    path = tmp_path / "20-abc.pkl"
    path.write_bytes(data)
    fitted = load_fit(str(path), "abc")
    assert isinstance(fitted, Fitted) and fitted.model == {"alpha": 0.3} and fitted.use_log
    np.testing.assert_array_equal(fitted.forecasts[(1, 2, "k")], np.ones(3))
    assert load_fit(str(path), "another digest") is None  # other rows: refitted
