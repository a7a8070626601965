"""The LSTM's linear base (``model.base = "linear"``): its inputs read the origin row, the lags
and the target's weekday; its closed-form fit recovers a planted linear driver from the
training windows only; it travels with the checkpoint; ``"none"`` keeps the network alone;
tonight's forecast refits it on every window up to tonight and nothing else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.features.calendar import calendar_features
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.model import base as base_module
from pipeline_lib.forecasting.model.base import (
    ALPHAS,
    GATES,
    fit_gate,
    fit_linear_base,
    refit_to,
    ridge_loo,
)
from pipeline_lib.forecasting.model.checkpoint import load_model, save_model
from pipeline_lib.forecasting.model.finetune import fine_tune
from pipeline_lib.forecasting.model.forecast import predict_at
from pipeline_lib.forecasting.model.lstm import LSTMForecaster, base_width, linear_base_inputs
from pipeline_lib.forecasting.model.refits import KEEP_DAYS, RefitStore
from pipeline_lib.forecasting.model.scaling import fit_scalers
from pipeline_lib.forecasting.model.testing import covariate_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.model.windows import make_windows, series_arrays

FS = FeatureSet.of(future=[("x", 2)])
CAL = list(schema.CALENDAR_FEATURES)
SCALED = [schema.Y, *FS.past_columns, *FS.lead_columns]
HORIZON, LOOKBACK = 3, 10
MODEL = ModelConfig(lookback=LOOKBACK, hidden_size=16, embedding_dim=2, dropout=0.0)
TINY = TrainingConfig(max_epochs=2, batch_size=64, train_window_days=400, num_threads=2)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    # y_{t+h} is linear in y_t and the known-ahead x_{t+1}, x_{t+2} (h <= 2), plus noise 0.1
    return covariate_features(n_series=2, n_days=220, known_ahead=2, seed=3, noise=0.1)


def _windows(features: pd.DataFrame, cutoff: dt.date | None = None):
    scalers = fit_scalers(features, dt.date(2020, 8, 31), SCALED)
    arrays = series_arrays(features, scalers, ["S0", "S1"], CAL, FS.lead_columns)
    return make_windows(arrays, LOOKBACK, HORIZON, len(CAL), cutoff=cutoff, feature_set=FS)


def _module(windows, base: str = "linear") -> LSTMForecaster:
    torch.manual_seed(0)
    n_past, n_future = windows.past.shape[2], windows.future.shape[2]
    return LSTMForecaster(2, n_past, n_future, HORIZON, base=base, n_calendar_features=len(CAL))


def test_inputs_are_the_origin_row_the_lags_the_target_weekday_and_the_known_future() -> None:
    lookback, n_past = 8, 3
    past = torch.arange(2 * lookback * n_past, dtype=torch.float32).reshape(2, lookback, n_past)
    days = pd.date_range("2024-01-01", periods=4, freq="D")  # Monday .. Thursday
    calendar = calendar_features(days)[CAL].to_numpy(np.float32)  # [4, F_cal]
    future = torch.from_numpy(np.stack([calendar[:3], calendar[1:]]))  # [2, H=3, F_cal]
    covariate = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])  # [2, H]: leads x@1, x@2
    known = (covariate != 0).float()
    future = torch.cat([future, covariate[..., None], known[..., None]], dim=2)  # [2, 3, F_cal + 2]
    x = linear_base_inputs(past, future, len(CAL))
    assert x.shape == (2, 3, base_width(n_past, len(CAL) + 2, len(CAL), 3))
    assert torch.equal(x[:, 0, :n_past], past[:, -1, :])  # the origin's row, every step
    y = past[:, :, 0]
    assert torch.equal(x[:, 1, n_past], y[:, -1] - y[:, -2])  # y_t - y_{t-1}
    assert torch.equal(x[:, 2, n_past + 1], y[:, -1] - y[:, -7])  # y_t - y_{t-6}
    dummies = x[:, :, n_past + 2 : n_past + 9]
    assert dummies.argmax(-1).tolist() == [[0, 1, 2], [1, 2, 3]]  # the targets' weekdays
    assert torch.equal(dummies.sum(-1), torch.ones(2, 3))
    assert torch.equal(x[:, :, n_past + 9 : n_past + 9 + len(CAL) + 2], future)  # step h's own
    assert torch.equal(x[:, 1, -3:], covariate) and torch.equal(x[:, 0, -3:], covariate)  # all


def test_fit_recovers_a_planted_linear_driver_and_uses_only_the_given_windows(
    features: pd.DataFrame,
) -> None:
    train = _windows(features, cutoff=dt.date(2020, 8, 31))
    module = _module(train)
    summary = fit_linear_base(module, train)
    assert summary["series"] == 2 and summary["windows"] == len(train)
    late = _windows(features)
    late = late.subset(late.origin_date > np.datetime64("2020-09-01"))  # never fitted on
    with torch.no_grad():
        base = module.base_forecast(late.past, late.future, late.series_index)
    residual = (late.target - base).std(0)  # [H], scaled units
    spread = late.target.std(0)
    assert (residual[:2] < 0.2 * spread[:2]).all()  # h = 1, 2: x@h known, the base explains y
    assert residual[2] > 2 * residual[0]  # h = 3: x_{t+3} unknown at t, nothing to explain it

    with pytest.raises(ValueError, match="no linear base"):
        fit_linear_base(_module(train, "none"), train)
    again = _module(train)
    fit_linear_base(again, train)  # closed form: the same windows, the same weights
    assert torch.equal(again.base_weight, module.base_weight)


def test_trained_hybrid_beats_the_network_alone_and_survives_the_checkpoint(
    features: pd.DataFrame, tmp_path: Path
) -> None:
    end, fit_end = dt.date(2020, 10, 30), dt.date(2020, 8, 31)
    hybrid = train_full(features, MODEL, TINY, HORIZON, end, fit_end=fit_end, feature_set=FS)
    alone = train_full(
        features,
        MODEL.model_copy(update={"base": "none"}),
        TINY,
        HORIZON,
        end,
        fit_end=fit_end,
        feature_set=FS,
    )
    assert hybrid.hyperparameters["base"] == "linear" and "base" not in alone.hyperparameters
    assert hybrid.metrics["base"]["series"] == 2
    days = features.loc[features[schema.DATE] > pd.Timestamp(fit_end), schema.DATE].unique()
    origins = dict.fromkeys(["S0", "S1"], np.sort(days)[:-HORIZON])
    freq = {"S0": "B", "S1": "B"}
    actual = features.set_index([schema.SERIES_ID, schema.DATE])[schema.Y]

    def mae(model) -> float:
        out = predict_at(model, features, origins, freq).query("horizon == 1")
        truth = actual.reindex(pd.MultiIndex.from_frame(out[[schema.SERIES_ID, "target_date"]]))
        return float(np.abs(out["yhat"].to_numpy() - truth.to_numpy()).mean())

    assert mae(hybrid) < 0.5 * mae(alone)  # two epochs: the base has already learnt x@1

    save_model(str(tmp_path), hybrid)
    loaded = load_model(str(tmp_path), hybrid.version)
    assert torch.equal(loaded.module.base_weight, hybrid.module.base_weight)
    assert mae(loaded) == mae(hybrid)
    child = fine_tune(hybrid, features, TINY, dt.date(2020, 11, 6))  # the base is refitted
    assert child.metrics["base"]["windows"] > hybrid.metrics["base"]["windows"]
    assert not torch.equal(child.module.base_weight, hybrid.module.base_weight)


def test_refit_to_tonight_changes_only_the_base_and_reads_only_rows_up_to_tonight(
    features: pd.DataFrame,
) -> None:
    end, fit_end = dt.date(2020, 10, 30), dt.date(2020, 8, 31)
    hybrid = train_full(features, MODEL, TINY, HORIZON, end, fit_end=fit_end, feature_set=FS)
    before = {k: v.clone() for k, v in hybrid.module.state_dict().items()}
    tonight = refit_to(hybrid, features, end)

    # a copy: the model scored in the backtest keeps its own base; the network is the same
    assert tonight is not hybrid and tonight.version == hybrid.version
    assert all(torch.equal(v, hybrid.module.state_dict()[k]) for k, v in before.items())
    network = [k for k in before if not k.startswith("base_")]
    assert all(torch.equal(tonight.module.state_dict()[k], before[k]) for k in network)
    assert not torch.equal(tonight.module.base_weight, hybrid.module.base_weight)

    # the base is the closed-form fit on the windows whose targets end by tonight, from the
    # rows of the model's training window up to tonight, scaled by the model's scalers
    rows = features.loc[features[schema.DATE] >= pd.Timestamp(end) - pd.Timedelta(days=399)]
    arrays = series_arrays(rows, hybrid.scalers, hybrid.series_ids, CAL, FS.lead_columns)
    windows = make_windows(arrays, LOOKBACK, HORIZON, len(CAL), cutoff=end, feature_set=FS)
    assert windows.target_end_date.max() == np.datetime64(pd.Timestamp(end).as_unit("ns"))
    direct = _module(windows)
    fit_linear_base(direct, windows)
    assert torch.allclose(tonight.module.base_weight, direct.base_weight)
    assert torch.allclose(tonight.module.base_bias, direct.base_bias)

    # point in time: a later row, however wrong, changes nothing; the same inputs, the same base
    later = features.loc[features[schema.DATE] > pd.Timestamp(end)].index
    spoiled = features.copy()
    spoiled.loc[later, schema.Y] = 1e6
    again = refit_to(hybrid, spoiled, end)
    assert torch.equal(again.module.base_weight, tonight.module.base_weight)
    assert torch.equal(again.module.base_bias, tonight.module.base_bias)

    # the series wanted only: theirs is the refit of every series, the others keep the model's
    one = refit_to(hybrid, features, end, series={"S1"})
    assert torch.equal(one.module.base_weight[1], tonight.module.base_weight[1])
    assert torch.equal(one.module.base_bias[1], tonight.module.base_bias[1])
    assert torch.equal(one.module.base_weight[0], hybrid.module.base_weight[0])
    assert refit_to(hybrid, features, end, series=set()) is hybrid

    # nothing to refit: on or before the target end, or without a base
    assert refit_to(hybrid, features, fit_end) is hybrid
    alone = train_full(
        features, MODEL.model_copy(update={"base": "none"}), TINY, HORIZON, end,
        fit_end=fit_end, feature_set=FS,
    )  # fmt: skip
    assert refit_to(alone, features, end) is alone


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ridge_loo_is_scikit_learns_standardised_ridge_cv(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, n, p = 4, int(rng.integers(30, 400)), 12
    x = rng.normal(size=(k, n, p)) * rng.uniform(0.1, 10, p) + rng.normal(size=p)
    x[:, :, 3] = 2.5  # a constant column
    x[:, :, 4] = 2 * x[:, :, 5]  # collinear columns
    noise = rng.normal(size=(k, n)) * rng.uniform(0.5, 50, k)[:, None]  # penalties differ
    y = np.einsum("knp,p->kn", x, rng.normal(size=p)) + noise
    weight, intercept, alpha = ridge_loo(x, y, ALPHAS)
    for i in range(k):
        fitted = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS)).fit(x[i], y[i])
        scaler, ridge = fitted[0], fitted[1]
        w = ridge.coef_ / scaler.scale_
        assert alpha[i] == ridge.alpha_
        np.testing.assert_allclose(weight[i], w, rtol=1e-7, atol=1e-9)
        assert intercept[i] == pytest.approx(ridge.intercept_ - w @ scaler.mean_, rel=1e-7)
    assert weight[:, 3] == pytest.approx(0.0)


def test_gate_keeps_the_correction_where_it_helps_and_drops_it_where_it_adds_error(
    features: pd.DataFrame,
) -> None:
    train = _windows(features, cutoff=dt.date(2020, 8, 31))
    val = _windows(features).subset(_windows(features).origin_date > np.datetime64("2020-09-01"))
    torch.manual_seed(0)
    n_past, n_future = train.past.shape[2], train.future.shape[2]
    module = LSTMForecaster(
        2, n_past, n_future, HORIZON, base="linear", n_calendar_features=len(CAL), gate=True
    )
    fit_linear_base(module, train)
    shift, mid = 0.8, len(module.quantiles) // 2
    with torch.no_grad():  # the network's median correction: + shift everywhere
        last = module.head[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias.view(HORIZON, -1)[:, mid] = shift
        module.base_bias[0] -= shift  # series 0's base is low by shift: the correction fixes it
    summary = fit_gate(module, val)  # series 1's base is right: the correction only adds error
    assert module.gate_weight[0].tolist() == [1.0] * HORIZON
    # h = 1, 2: the base explains y, none of the shift is kept; h = 3 (x unknown): less of it
    assert module.gate_weight[1, :2].tolist() == [0.0, 0.0] and module.gate_weight[1, 2] < 1
    assert summary["h1_mean"] == 0.5 and summary["factors"] == list(GATES)

    # the gate moves the median's correction only: the quantiles keep their gaps
    with torch.no_grad():
        out = module(val.past, val.future, val.series_index)  # [n, H, Q]
        base = module.base_forecast(val.past, val.future, val.series_index)
    one = val.series_index == 1
    assert torch.allclose(out[one][:, :2, mid], base[one][:, :2], atol=1e-6)  # none left
    gaps = out[..., 1:] - out[..., :-1]
    assert torch.allclose(gaps[one], gaps[~one], atol=1e-5) and (gaps > 0).all()


def test_a_trained_gate_is_chosen_on_validation_and_saved_with_the_weights(
    features: pd.DataFrame, tmp_path: Path
) -> None:
    end, fit_end = dt.date(2020, 10, 30), dt.date(2020, 8, 31)
    gated = train_full(features, MODEL, TINY, HORIZON, end, fit_end=fit_end, feature_set=FS)
    assert gated.hyperparameters["gate"] is True and gated.module.gate
    assert set(gated.module.gate_weight.unique().tolist()) <= set(GATES)
    assert gated.metrics["gate"]["factors"] == list(GATES)
    save_model(str(tmp_path), gated)
    loaded = load_model(str(tmp_path), gated.version)
    assert torch.equal(loaded.module.gate_weight, gated.module.gate_weight)
    child = fine_tune(gated, features, TINY, dt.date(2020, 11, 6))  # chosen again
    assert "gate" in child.metrics and child.module.gate

    ungated = train_full(
        features, MODEL.model_copy(update={"gate": False}), TINY, HORIZON, end,
        fit_end=fit_end, feature_set=FS,
    )  # fmt: skip
    assert "gate" not in ungated.hyperparameters and not ungated.module.gate
    assert "gate_weight" not in ungated.module.state_dict() and "gate" not in ungated.metrics


def test_on_an_asinh_scale_tonights_base_is_the_mean_of_the_fits_on_both_scales(
    features: pd.DataFrame,
) -> None:
    end, fit_end = dt.date(2020, 10, 30), dt.date(2020, 8, 31)
    model = MODEL.model_copy(update={"asinh_rows": 8})
    hybrid = train_full(features, model, TINY, HORIZON, end, fit_end=fit_end, feature_set=FS)
    tonight = refit_to(hybrid, features, end, rows=0)

    rows = schema.dated_up_to(features, end)
    arrays = series_arrays(rows, hybrid.scalers, hybrid.series_ids, CAL, FS.lead_columns)
    windows = make_windows(
        arrays, LOOKBACK, HORIZON, len(CAL), cutoff=end, feature_set=FS, asinh_rows=8
    )
    own, newest = _module(windows), _module(windows)
    fit_linear_base(own, windows)  # each window on its own scale, as the network reads it
    fit_linear_base(newest, windows.on_newest_scale())  # every window on tonight's scale
    assert not torch.allclose(own.base_weight, newest.base_weight)
    mean_weight = (own.base_weight + newest.base_weight) / 2
    assert torch.allclose(tonight.module.base_weight, mean_weight, atol=1e-6)
    assert torch.allclose(tonight.module.base_bias, (own.base_bias + newest.base_bias) / 2)

    # point in time: a later row changes nothing, tonight's scale included
    spoiled = features.copy()
    spoiled.loc[spoiled[schema.DATE] > pd.Timestamp(end), schema.Y] = 1e6
    again = refit_to(hybrid, spoiled, end, rows=0)
    assert torch.equal(again.module.base_weight, tonight.module.base_weight)
    # the series not wanted keep the model's base
    one = refit_to(hybrid, features, end, series={"S1"}, rows=0)
    assert torch.equal(one.module.base_weight[0], hybrid.module.base_weight[0])
    assert torch.allclose(one.module.base_weight[1], tonight.module.base_weight[1])


def test_refit_to_the_newest_rows_of_each_series(features: pd.DataFrame) -> None:
    end, fit_end = dt.date(2020, 10, 30), dt.date(2020, 8, 31)
    hybrid = train_full(features, MODEL, TINY, HORIZON, end, fit_end=fit_end, feature_set=FS)
    newest = refit_to(hybrid, features, end, rows=60)
    rows = schema.dated_up_to(features, end).sort_values([schema.SERIES_ID, schema.DATE])
    rows = rows.groupby(schema.SERIES_ID).tail(60)
    arrays = series_arrays(rows, hybrid.scalers, hybrid.series_ids, CAL, FS.lead_columns)
    windows = make_windows(arrays, LOOKBACK, HORIZON, len(CAL), cutoff=end, feature_set=FS)
    assert len(windows) == 2 * (60 - LOOKBACK - HORIZON + 1)
    direct = _module(windows)
    fit_linear_base(direct, windows)
    assert torch.allclose(newest.module.base_weight, direct.base_weight)
    every = refit_to(hybrid, features, end, rows=0)  # every row up to tonight
    assert not torch.allclose(every.module.base_weight, newest.module.base_weight)


def test_models_reading_the_same_windows_share_one_refit_bit_for_bit(
    features: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the backtest's champion and tonight's fine-tune of it: the parent's scalers, other weights
    end, fit_end = dt.date(2020, 10, 30), dt.date(2020, 8, 31)
    model = MODEL.model_copy(update={"asinh_rows": 8})
    parent = train_full(features, model, TINY, HORIZON, end, fit_end=fit_end, feature_set=FS)
    child = fine_tune(parent, features, TINY, dt.date(2020, 11, 6))
    assert child.scalers.to_dict() == parent.scalers.to_dict()
    assert not torch.equal(child.module.base_weight, parent.module.base_weight)
    night = child.target_end
    alone = [refit_to(m, features, night, rows=0, at_end=True) for m in (parent, child)]

    fits: list[int] = []
    real = base_module.fit_linear_base

    def counted(*args, **kwargs):
        fits.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(base_module, "fit_linear_base", counted)
    shared = RefitStore()  # one backtest's memory
    together = [
        refit_to(m, features, night, rows=0, at_end=True, shared=shared) for m in (parent, child)
    ]
    assert len(fits) == 2 and len(shared.memory) == 1  # the parent's two scales; none for the child
    for one, other in zip(alone, together, strict=True):
        assert torch.equal(one.module.base_weight, other.module.base_weight)
        assert torch.equal(one.module.base_bias, other.module.base_bias)
        network = [k for k in one.module.state_dict() if not k.startswith("base_")]
        assert all(
            torch.equal(one.module.state_dict()[k], other.module.state_dict()[k]) for k in network
        )
    assert together[1].version == child.version and together[0].version == parent.version

    # one window per series: nothing is fitted, each model keeps its own base
    few = RefitStore()
    kept = [
        refit_to(m, features, night, rows=LOOKBACK + HORIZON, at_end=True, shared=few)
        for m in (parent, child)
    ]
    for m, k in zip((parent, child), kept, strict=True):
        assert torch.equal(k.module.base_weight, m.module.base_weight)

    # other scalers (another training's): other windows, a fit of its own
    other = train_full(
        features, model, TINY, HORIZON, end, fit_end=dt.date(2020, 7, 31), feature_set=FS
    )
    assert other.scalers.to_dict() != parent.scalers.to_dict()
    fits.clear()
    refit_to(other, features, night, rows=0, at_end=True, shared=shared)
    assert len(fits) == 2 and len(shared.memory) == 2


def test_a_refit_kept_on_disk_serves_the_next_night_while_its_rows_are_unchanged(
    features: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    end, fit_end = dt.date(2020, 10, 30), dt.date(2020, 8, 31)
    model = MODEL.model_copy(update={"asinh_rows": 8})
    hybrid = train_full(features, model, TINY, HORIZON, end, fit_end=fit_end, feature_set=FS)
    start = dt.date(2020, 11, 6)  # the hold-out start of two nights in a row
    alone = refit_to(hybrid, features, start, rows=60, at_end=True)
    folder = str(tmp_path / "refits")
    first = refit_to(hybrid, features, start, rows=60, at_end=True, shared=RefitStore(folder))
    assert torch.equal(first.module.base_weight, alone.module.base_weight)
    (kept,) = (tmp_path / "refits").glob("*.npz")
    assert kept.name.startswith("2020-11-06-")

    fits: list[int] = []
    real = base_module.fit_linear_base
    monkeypatch.setattr(
        base_module, "fit_linear_base", lambda *a, **k: fits.append(1) or real(*a, **k)
    )
    # the next night: a new row after the hold-out start changes nothing read; none is fitted
    later = features.copy()
    later.loc[later[schema.DATE] > pd.Timestamp(start), schema.Y] += 1.0
    night = RefitStore(folder)
    again = refit_to(hybrid, later, start, rows=60, at_end=True, shared=night)
    assert fits == [] and night.read == 1
    assert torch.equal(again.module.base_weight, alone.module.base_weight)
    assert torch.equal(again.module.base_bias, alone.module.base_bias)

    # a revised row that the refit reads: refitted, as the fit alone gives it
    revised = features.copy()
    day = revised.index[revised[schema.DATE] == pd.Timestamp(start) - pd.Timedelta(days=3)]
    revised.loc[day, schema.Y] += 5.0
    refit = refit_to(hybrid, revised, start, rows=60, at_end=True, shared=RefitStore(folder))
    assert len(fits) == 2
    direct = refit_to(hybrid, revised, start, rows=60, at_end=True)
    assert torch.equal(refit.module.base_weight, direct.module.base_weight)
    assert len(list((tmp_path / "refits").glob("*.npz"))) == 2

    # a torn file costs its refit, never the night
    kept.write_bytes(b"torn")
    fits.clear()
    torn = refit_to(hybrid, later, start, rows=60, at_end=True, shared=RefitStore(folder))
    assert len(fits) == 2 and torch.equal(torn.module.base_weight, alone.module.base_weight)

    # a night a month on deletes the refits dated more than KEEP_DAYS before its own
    month = start + dt.timedelta(days=KEEP_DAYS + 1)
    refit_to(hybrid, features, month, rows=60, at_end=True, shared=RefitStore(folder))
    names = sorted(p.name[:10] for p in (tmp_path / "refits").glob("*.npz"))
    assert names == [month.isoformat()]
