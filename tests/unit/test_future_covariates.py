"""The global LSTM with declared covariates: future covariates' leads come from the origin row
only, masked beyond their reach and where unknown; a planted known-ahead driver is learnt; the
feature set travels with the checkpoint; a changed feature set forces a full training."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig, load_settings
from pipeline_lib.features.spec import FeatureSet, lead_column
from pipeline_lib.forecasting.model.checkpoint import load_model, save_model
from pipeline_lib.forecasting.model.finetune import fine_tune
from pipeline_lib.forecasting.model.forecast import predict_at
from pipeline_lib.forecasting.model.scaling import fit_scalers
from pipeline_lib.forecasting.model.testing import covariate_features, random_walk_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.model.trained import TrainedModel, build_module
from pipeline_lib.forecasting.model.windows import make_windows, series_arrays
from pipeline_lib.forecasting.retrain import decide

FS = FeatureSet.of(future=[("x", 2)])
CAL = list(schema.CALENDAR_FEATURES)
SCALED = [schema.Y, *FS.past_columns, *FS.lead_columns]
HORIZON, LOOKBACK = 3, 5
CUTOFF = dt.date(2020, 4, 30)
FREQ = {"S0": "B", "S1": "B"}
MODEL = ModelConfig(lookback=10, hidden_size=16, embedding_dim=2, dropout=0.0)
TINY = TrainingConfig(max_epochs=2, batch_size=64, train_window_days=400, num_threads=2)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return covariate_features(n_series=2, n_days=150, known_ahead=2, missing=0.2, seed=1)


@pytest.fixture(scope="module")
def tiny(features: pd.DataFrame) -> TrainedModel:
    return train_full(features, MODEL, TINY, HORIZON, dt.date(2020, 6, 30), feature_set=FS)


def _windows(features: pd.DataFrame):
    scalers = fit_scalers(features, CUTOFF, SCALED)
    arrays = series_arrays(features, scalers, ["S0", "S1"], CAL, FS.lead_columns)
    return scalers, make_windows(arrays, LOOKBACK, HORIZON, len(CAL), feature_set=FS)


def test_future_block_reads_the_origin_rows_leads_masked_beyond_reach_and_where_unknown(
    features: pd.DataFrame,
) -> None:
    scalers, w = _windows(features)
    n_cal = len(CAL)
    assert w.future.shape == (len(w), HORIZON, n_cal + 2)  # calendar, x value, x mask
    assert w.past.shape[2] == len(SCALED) - len(FS.lead_columns) + n_cal
    # each series' rows, read once: its leads of x (known 2 days ahead) and its calendar
    rows = {
        sid: features[features[schema.SERIES_ID] == sid].reset_index(drop=True)
        for sid in ("S0", "S1")
    }
    leads = {sid: {h: r[lead_column("x", h)].to_numpy() for h in (1, 2)} for sid, r in rows.items()}
    calendar = {sid: r[CAL].to_numpy(np.float32) for sid, r in rows.items()}
    future = w.future.numpy()
    checked_unknown = 0
    for k in range(len(w)):
        sid = ["S0", "S1"][int(w.series_index[k])]
        t = int(w.origin_index[k])
        i = scalers.columns
        for h in range(1, HORIZON + 1):
            value, mask = float(future[k, h - 1, n_cal]), float(future[k, h - 1, n_cal + 1])
            raw = leads[sid][h][t] if h <= 2 else np.nan  # the ORIGIN row's lead
            if np.isnan(raw):
                assert (value, mask) == (0.0, 0.0)
                checked_unknown += h <= 2
            else:
                j = i.index(lead_column("x", h))
                scaled = (raw - scalers.mean[sid][j]) / scalers.scale[sid][j]
                assert mask == 1.0 and value == pytest.approx(scaled, rel=1e-5, abs=1e-6)
            np.testing.assert_array_equal(future[k, h - 1, :n_cal], calendar[sid][t + h])
    assert checked_unknown > 10  # the planted NaN leads were met, and masked


def test_a_lead_changed_after_the_origin_changes_nothing_of_that_origins_window(
    features: pd.DataFrame,
) -> None:
    # Risk guarded: leakage. A value issued after the origin (on a later row) is never read.
    origin = pd.Timestamp("2020-05-15")
    tampered = features.copy()
    later = tampered[schema.DATE] > origin
    tampered.loc[later, FS.lead_columns + ["x"]] = 1e3
    _, base = _windows(features)
    _, after = _windows(tampered)
    upto = base.origin_date <= np.datetime64(origin)
    assert upto.sum() > 0 and np.array_equal(after.origin_date, base.origin_date)
    assert torch.equal(base.past[upto], after.past[upto])
    assert torch.equal(base.future[upto], after.future[upto])
    assert not torch.equal(base.future[~upto], after.future[~upto])  # later origins do see it


def test_forecast_reads_the_origin_rows_leads_as_the_training_windows_do(
    tiny: TrainedModel, features: pd.DataFrame
) -> None:
    first, second = np.datetime64("2020-07-01", "ns"), np.datetime64("2020-07-08", "ns")
    dates = {"S0": np.array([first, second]), "S1": np.array([first, second])}
    base = predict_at(tiny, features, dates, FREQ)
    tampered = features.copy()
    tampered.loc[tampered[schema.DATE] > pd.Timestamp(first), FS.lead_columns] = 50.0
    out = predict_at(tiny, tampered, dates, FREQ)
    on_first = base["forecast_date"] == first
    pd.testing.assert_frame_equal(out[on_first], base[on_first], check_exact=True)
    assert not np.allclose(out.loc[~on_first, "yhat"], base.loc[~on_first, "yhat"])

    # The same inputs as the model's own windows (no train/serve skew): forecast = window.
    arrays = series_arrays(features, tiny.scalers, tiny.series_ids, CAL, FS.lead_columns)
    w = make_windows(arrays, tiny.lookback, HORIZON, len(CAL), feature_set=FS)
    k = np.flatnonzero(w.origin_date == first)
    with torch.no_grad():
        change = tiny.module.eval()(w.past[k], w.future[k], w.series_index[k])[..., 1]
    levels = change.numpy().astype(np.float64) + w.past[k, -1, 0].numpy()[:, None]
    ids = np.array(tiny.series_ids)[w.series_index[k].numpy()]
    expected = tiny.scalers.inverse_column(ids, levels)
    got = base[on_first].sort_values([schema.SERIES_ID, "horizon"])["yhat"].to_numpy()
    np.testing.assert_allclose(got, expected.reshape(-1), rtol=1e-5)


def test_a_known_ahead_driver_is_learnt() -> None:
    """y follows x one step later; x@1 is known at the origin: the model with the covariate
    forecasts h=1 far better than the same model without it (x is noise to the past)."""
    data = covariate_features(n_series=2, n_days=280, known_ahead=2, seed=3)
    cfg = TrainingConfig(
        max_epochs=20, patience=5, batch_size=32, learning_rate=1e-2, train_window_days=400,
        num_threads=2,
    )  # fmt: skip
    fit_end, train_end = dt.date(2020, 9, 15), dt.date(2020, 12, 31)
    origins = data.loc[data[schema.DATE] > pd.Timestamp(fit_end), schema.DATE].unique()[:-3]
    errors = {}
    for name, fs in (("with", FS), ("without", FeatureSet())):
        model = train_full(data, MODEL, cfg, HORIZON, train_end, fit_end=fit_end, feature_set=fs)
        out = predict_at(model, data, {"S0": origins, "S1": origins}, FREQ)
        actual = data.rename(columns={schema.DATE: "target_date"})
        joined = out.merge(actual[[schema.SERIES_ID, "target_date", schema.Y]])
        errors[name] = (joined["yhat"] - joined[schema.Y]).abs().groupby(joined["horizon"]).mean()
    assert errors["with"][1] < 0.5 * errors["without"][1], errors
    assert errors["with"][2] < 0.7 * errors["without"][2], errors  # x@2 is known too


def test_checkpoint_keeps_the_feature_set_and_the_forecasts(
    tiny: TrainedModel, features: pd.DataFrame, tmp_path: Path
) -> None:
    version = save_model(str(tmp_path), tiny)
    meta = json.loads((tmp_path / version / "metadata.json").read_text())
    assert FeatureSet.from_dict(meta["feature_set"]) == FS
    assert meta["hyperparameters"]["n_future_features"] == len(CAL) + 2
    loaded = load_model(str(tmp_path), version)
    assert loaded.feature_set == FS and loaded.version == version == tiny.version
    assert loaded.scalers.columns == SCALED == tiny.scaled_columns
    dates = {s: np.array([np.datetime64("2020-07-01", "ns")]) for s in FREQ}
    expected = predict_at(tiny, features, dates, FREQ)
    pd.testing.assert_frame_equal(predict_at(loaded, features, dates, FREQ), expected)
    # the feature set is part of the identity
    assert dataclasses.replace(tiny, feature_set=FeatureSet()).version != tiny.version


def test_checkpoint_saved_before_covariates_still_loads(tmp_path: Path) -> None:
    data = random_walk_features(n_series=2, n_days=150)
    plain = train_full(data, MODEL, TINY, HORIZON, dt.date(2020, 6, 30))
    assert plain.feature_set == FeatureSet() and "n_future_features" not in plain.hyperparameters
    version = save_model(str(tmp_path), plain)
    meta_path = tmp_path / version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["feature_set"]  # an old-style record: n_calendar_features only, no feature set
    meta_path.write_text(json.dumps(meta))
    loaded = load_model(str(tmp_path), version)
    assert loaded.feature_set == FeatureSet() and loaded.version == version
    dates = {s: np.array([np.datetime64("2020-07-01", "ns")]) for s in FREQ}
    expected = predict_at(plain, data, dates, FREQ)
    pd.testing.assert_frame_equal(predict_at(loaded, data, dates, FREQ), expected)
    old = {k: v for k, v in plain.hyperparameters.items() if k not in ("cell", "attention")}
    assert build_module(old).head[0].in_features == plain.module.head[0].in_features
    # a frame with the (empty) covariate columns gives the same forecasts as without them
    widened = random_walk_features(n_series=2, n_days=150, feature_set=FS)
    assert list(widened.columns) == FS.columns and widened[FS.lead_columns].isna().all().all()
    pd.testing.assert_frame_equal(predict_at(plain, widened, dates, FREQ), expected)


def test_fine_tune_keeps_the_parents_feature_set(
    tiny: TrainedModel, features: pd.DataFrame
) -> None:
    cfg = TINY.model_copy(update={"finetune_epochs": 1, "finetune_window_days": 40})
    child = fine_tune(tiny, features, cfg, dt.date(2020, 7, 31))
    assert child.feature_set == FS and child.scalers.columns == SCALED
    with pytest.raises(ValueError, match=r"lack the columns \['x', 'x@1', 'x@2'\]"):
        fine_tune(tiny, features.drop(columns=["x", *FS.lead_columns]), cfg, dt.date(2020, 7, 31))


def _record(feature_set: FeatureSet | None, settings) -> dict:
    hp = {k: getattr(settings.model, k) for k in ("lookback", "hidden_size", "num_layers")}
    hp |= {"dropout": settings.model.dropout, "embedding_dim": settings.model.embedding_dim}
    hp |= {"base": settings.model.base, "gate": settings.model.gate}
    record = {
        "version": "m1",
        "train_end": "2015-06-01",
        "kind": "full",
        "parent_version": None,
        "series_ids": ["A", "B"],
        "horizon": settings.horizon,
        "quantiles": settings.model.quantiles,
        "hyperparameters": hp,
    }
    if feature_set is not None:
        record["feature_set"] = feature_set.to_dict()
    return record


def test_retrain_trains_in_full_when_the_feature_set_changes() -> None:
    load = {"name": "load_forecast", "role": "future", "known_ahead": 1}
    settings = load_settings(
        data_dir="/tmp/unused",
        training={"retrain_every_days": 28},
        series=[{"id": "A", "covariates": [load]}, {"id": "B"}],
    )
    day, newest = dt.date(2015, 6, 5), dt.date(2015, 6, 5)

    def decision(record: dict):
        return decide([record], settings, day, ["A", "B"], newest)

    old = decision(_record(None, settings))  # saved before covariates
    assert (old.action, old.trigger, old.contest) == ("full", "settings_changed", False)
    assert old.reason == "inputs changed: covariates added ['load_forecast']"
    reach = decision(_record(FeatureSet.of(future=[("load_forecast", 2)]), settings))
    assert reach.action == "full" and reach.reason == (
        "inputs changed: covariates changed 'load_forecast' "
        "(future, known_ahead 2 -> future, known_ahead 1)"
    )
    more = FeatureSet.of(past=["wind"], future=[("load_forecast", 1)])
    assert decision(_record(more, settings)).reason == "inputs changed: covariates removed ['wind']"
    same = decision(_record(settings.feature_set, settings))
    assert same.action == "finetune"  # the same inputs: a fine-tune is possible
