"""Scaling and windowing: no leakage from after the cut-off, windows aligned with their dates."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.errors import NotEnoughHistory, PipelineError
from pipeline_lib.forecasting.model.scaling import SeriesScalers, fit_scalers
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.model.window_set import SeriesArray, local_scale
from pipeline_lib.forecasting.model.windows import (
    make_windows,
    series_arrays,
    split_windows,
    training_rows,
)

COLUMNS = [schema.Y, *schema.PAST_FEATURES]
CAL = list(schema.CALENDAR_FEATURES)
CUTOFF = dt.date(2020, 6, 30)


@pytest.fixture
def features() -> pd.DataFrame:
    return random_walk_features(n_series=2, n_days=200)


def test_scalers_ignore_rows_after_train_end(features: pd.DataFrame) -> None:
    # Risk guarded: leakage. Rows dated after the cut-off must not move mean or scale.
    before = fit_scalers(features, CUTOFF, COLUMNS)
    changed = features.copy()
    later = changed[schema.DATE] > pd.Timestamp(CUTOFF)
    changed.loc[later, COLUMNS] = changed.loc[later, COLUMNS] * 1000 + 7
    extra = changed.loc[later].assign(**{schema.SERIES_ID: "NEW"})  # a series seen only later
    after = fit_scalers(pd.concat([changed, extra]), CUTOFF, COLUMNS)
    assert after.to_dict() == before.to_dict()
    assert after.series_ids == ["S0", "S1"]


def test_scalers_are_plain_json_and_handle_nan_and_constant_columns(features: pd.DataFrame) -> None:
    frame = features.assign(range_pct=3.0)  # zero variance
    scalers = fit_scalers(frame, CUTOFF, COLUMNS)
    i = COLUMNS.index("range_pct")
    assert scalers.scale["S1"][i] == 1.0
    assert scalers.mean["S0"][COLUMNS.index("temp_max")] == 0.0  # S0 has no weather at all
    restored = SeriesScalers.from_dict(json.loads(json.dumps(scalers.to_dict())))
    assert restored == scalers
    scaled = scalers.transform(frame)
    assert scaled.dtype == np.float32 and not np.isnan(scaled).any()
    s1 = frame[schema.SERIES_ID] == "S1"
    window = frame.loc[s1 & (frame[schema.DATE] <= pd.Timestamp(CUTOFF)), schema.Y]
    expected = (frame.loc[s1, schema.Y] - window.mean()) / window.std(ddof=0)
    np.testing.assert_allclose(scaled[s1.to_numpy(), 0], expected, rtol=1e-5)


def test_windows_are_gathered_from_one_copy_of_the_rows() -> None:
    values = torch.arange(7 * 3, dtype=torch.float32).reshape(7, 3)  # the last column: calendar
    dates = pd.bdate_range("2024-01-01", periods=7).to_numpy()
    w = make_windows([SeriesArray(0, dates, values)], lookback=3, horizon=2, n_calendar=1)
    naive = torch.stack([values[i : i + 5] for i in range(7 - 5 + 1)])  # [3, L + H, F]
    assert len(w) == 3 and w.rows.shape == (7, 3)  # the rows once, not once per window
    assert torch.equal(w.past, naive[:, :3])
    assert torch.equal(w.future, naive[:, 3:, 2:])
    assert torch.equal(w.target, naive[:, 3:, 0] - naive[:, 2:3, 0])
    later = w.subset(np.array([False, True, True]))
    assert later.rows is w.rows and torch.equal(later.past, naive[1:, :3])
    past, future, target = w.batch(torch.tensor([2, 0]))
    assert torch.equal(past, naive[[2, 0], :3]) and torch.equal(target, w.target[[2, 0]])


def test_windows_read_y_on_their_own_asinh_scale() -> None:
    rng = np.random.default_rng(4)
    y = (20 + 10 * rng.standard_t(3, 40)).astype(np.float32)  # spikes
    y[25] = -30.0  # a negative price
    values = torch.from_numpy(np.stack([y, np.arange(40, dtype=np.float32)], axis=1))
    dates = pd.bdate_range("2024-01-01", periods=40).to_numpy()
    lookback, horizon, rows = 12, 3, 8
    w = make_windows([SeriesArray(0, dates, values)], lookback, horizon, 1, asinh_rows=rows)
    past, future, target = w.batch(torch.arange(len(w)))
    for k in range(len(w)):
        t = int(w.origin_index[k])
        recent = y[t - rows + 1 : t + 1].astype(np.float64)  # the newest past steps only
        m = np.median(recent)
        s = 1.4826 * np.median(np.abs(recent - m))
        z = np.arcsinh((y[t - lookback + 1 : t + 1 + horizon] - m) / s)
        np.testing.assert_allclose(past[k, :, 0].numpy(), z[:lookback], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(target[k].numpy(), z[lookback:] - z[lookback - 1], atol=1e-4)
    plain = make_windows([SeriesArray(0, dates, values)], lookback, horizon, 1)
    assert torch.equal(future, plain.future) and torch.equal(past[..., 1:], plain.past[..., 1:])
    assert torch.equal(w.rows, values)  # the rows are read, never rewritten
    flat = torch.zeros(2, 10)  # prices that do not vary: a spread of 1, not 0
    flat[1, :5] = torch.arange(5.0)  # the newest rows flat, older ones not
    _, centre, spread = local_scale(flat, 5)
    assert torch.equal(centre, torch.zeros(2, 1)) and torch.equal(spread, torch.ones(2, 1))


def test_windows_on_the_newest_scale_read_every_window_as_a_forecast_from_the_newest_row() -> None:
    rng = np.random.default_rng(5)
    lookback, horizon, rows = 12, 3, 8
    series = []
    for k, level in enumerate((20.0, 300.0)):  # two series, two scales
        y = (level + level / 4 * rng.standard_t(3, 40 + k)).astype(np.float32)
        values = torch.from_numpy(np.stack([y, np.arange(40 + k, dtype=np.float32)], axis=1))
        dates = pd.bdate_range("2024-01-01", periods=40 + k).to_numpy()
        series.append(SeriesArray(k, dates, values))
    w = make_windows(series, lookback, horizon, 1, asinh_rows=rows)
    common = w.on_newest_scale()
    past, future, target = common.batch(torch.arange(len(common)))
    for k, s in enumerate(series):
        y = s.values[:, 0].double().numpy()
        newest = y[-rows:]  # the newest rows: the past of a forecast from the newest row
        m = np.median(newest)
        spread = 1.4826 * np.median(np.abs(newest - m))
        _, centre_t, spread_t = local_scale(s.values[-lookback:, 0].unsqueeze(0), rows)
        assert np.isclose(float(centre_t), m) and np.isclose(float(spread_t), spread, rtol=1e-5)
        for i in np.flatnonzero(w.series_index.numpy() == k):
            t = int(w.origin_index[i])
            z = np.arcsinh((y[t - lookback + 1 : t + 1 + horizon] - m) / spread)
            np.testing.assert_allclose(past[i, :, 0].numpy(), z[:lookback], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(target[i].numpy(), z[lookback:] - z[lookback - 1], atol=1e-4)
    # the other inputs, the rows and the windows' own scales are untouched
    assert torch.equal(future, w.future) and torch.equal(past[..., 1:], w.past[..., 1:])
    assert torch.equal(common.rows, w.rows) and w.fixed_scale is None
    assert not torch.allclose(past[..., 0], w.past[..., 0])
    sub = common.subset(w.series_index.numpy() == 1)  # a subset keeps the series' scale
    assert torch.equal(sub.past[..., 0], past[w.series_index == 1][..., 0])
    plain = make_windows(series, lookback, horizon, 1)  # without an asinh scale: as it is
    assert plain.on_newest_scale() is plain


def test_window_shapes_and_targets_line_up_with_dates(features: pd.DataFrame) -> None:
    scalers = fit_scalers(features, CUTOFF, COLUMNS)
    arrays = series_arrays(features, scalers, ["S0", "S1"], CAL)
    lookback, horizon = 10, 3
    w = make_windows(arrays, lookback, horizon, len(CAL), cutoff=CUTOFF)
    n_features = len(COLUMNS) + len(CAL)
    assert w.past.shape == (len(w), lookback, n_features)
    assert w.future.shape == (len(w), horizon, len(CAL))
    assert w.target.shape == (len(w), horizon)
    assert (w.target_end_date <= np.datetime64(pd.Timestamp(CUTOFF))).all()

    # Naive re-computation for every window, from the DataFrame and the dates.
    scaled_y = {s: scalers.transform(g)[:, 0] for s, g in features.groupby(schema.SERIES_ID)}
    dates = {s: g[schema.DATE].to_numpy() for s, g in features.groupby(schema.SERIES_ID)}
    cal = {s: g[CAL].to_numpy(np.float32) for s, g in features.groupby(schema.SERIES_ID)}
    for k in range(0, len(w), 37):
        sid = ["S0", "S1"][int(w.series_index[k])]
        t = int(w.origin_index[k])
        assert w.origin_date[k] == dates[sid][t]
        assert w.target_end_date[k] == dates[sid][t + horizon]
        y = scaled_y[sid]
        np.testing.assert_array_equal(w.past[k, :, 0].numpy(), y[t - lookback + 1 : t + 1])
        np.testing.assert_allclose(w.target[k].numpy(), y[t + 1 : t + 1 + horizon] - y[t])
        np.testing.assert_array_equal(w.future[k].numpy(), cal[sid][t + 1 : t + 1 + horizon])


def test_split_is_time_ordered_and_train_targets_stop_before_validation(
    features: pd.DataFrame,
) -> None:
    scalers = fit_scalers(features, CUTOFF, COLUMNS)
    w = make_windows(series_arrays(features, scalers, ["S0", "S1"], CAL), 10, 5, len(CAL))
    train, val = split_windows(w, val_fraction=0.2)
    val_start = val.origin_date.min()
    assert train.target_end_date.max() <= val_start
    origins = np.unique(w.origin_date)
    assert set(np.unique(val.origin_date)) == set(origins[-round(len(origins) * 0.2) :])
    assert len(train) + len(val) < len(w)  # the windows straddling the boundary are dropped


def test_training_rows_keep_lookback_context_before_the_window(features: pd.DataFrame) -> None:
    first, last = pd.Timestamp("2020-06-01"), pd.Timestamp("2020-06-30")
    rows = training_rows(features, first, last, context=5, series_ids=["S1"])
    assert set(rows[schema.SERIES_ID]) == {"S1"} and rows[schema.DATE].max() <= last
    assert (rows[schema.DATE] < first).sum() == 5  # exactly the context rows before the window
    assert training_rows(features, "2030-01-01", "2030-02-01").empty  # no recent row: left out


def test_too_short_a_history_is_a_user_error_that_says_what_to_change() -> None:
    short = random_walk_features(n_series=1, n_days=40)
    with pytest.raises(NotEnoughHistory) as caught:  # the CLI prints it as error:, exit 1
        train_full(short, ModelConfig(lookback=30), TrainingConfig(), 14, dt.date(2020, 3, 31))
    assert isinstance(caught.value, PipelineError) and isinstance(caught.value, ValueError)
    assert "no series has lookback + horizon = 44 rows" in str(caught.value)
    assert "an earlier start_date" in str(caught.value) and "model.lookback" in str(caught.value)
