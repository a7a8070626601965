"""Training: loss goes down on a learnable signal, best weights are restored, runs are
reproducible bit for bit, and fine-tuning keeps its parent's scalers."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.forecasting.model.finetune import fine_tune
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.model.lstm import LSTMForecaster
from pipeline_lib.forecasting.model.scaling import fit_scalers
from pipeline_lib.forecasting.model.steps import eval_step, set_seed
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import fit, train_full
from pipeline_lib.forecasting.model.trained import data_fingerprint
from pipeline_lib.forecasting.model.window_set import WindowSet
from pipeline_lib.forecasting.model.windows import make_windows, series_arrays, split_windows

MODEL = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, dropout=0.0)
TRAIN = TrainingConfig(
    max_epochs=3, batch_size=64, train_window_days=365, finetune_epochs=2, finetune_window_days=60
)
TRAIN_END = dt.date(2020, 9, 30)
CAL = list(schema.CALENDAR_FEATURES)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return random_walk_features(n_series=2, n_days=260, weekly_signal=0.02)


def _windows(features: pd.DataFrame, horizon: int = 3) -> tuple[WindowSet, WindowSet]:
    columns = [schema.Y, *schema.PAST_FEATURES]
    scalers = fit_scalers(features, TRAIN_END, columns)
    arrays = series_arrays(features, scalers, ["S0", "S1"], CAL)
    windows = make_windows(arrays, MODEL.lookback, horizon, len(CAL), cutoff=TRAIN_END)
    return split_windows(windows, 0.2)


@dataclasses.dataclass(frozen=True)
class Constant(WindowSet):
    """Windows whose targets are all ``value``."""

    value: float = 0.0

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        past, future, target = super().batch(idx)
        return past, future, torch.full_like(target, self.value)


def _model(n_past: int, horizon: int = 3) -> LSTMForecaster:
    set_seed(0)
    return LSTMForecaster(2, n_past, len(CAL), horizon, hidden_size=8, embedding_dim=2, dropout=0)


def test_training_reduces_the_loss_on_a_learnable_signal(features: pd.DataFrame) -> None:
    train, val = _windows(features)
    model = _model(train.past.shape[2])
    before = eval_step(model, val, 256)
    cfg = TRAIN.model_copy(update={"patience": 10})
    metrics, _ = fit(model, train, val, cfg, learning_rate=1e-2, max_epochs=8)
    assert metrics["best_val_loss"] < 0.8 * before
    assert eval_step(model, val, 256) == pytest.approx(metrics["best_val_loss"], rel=1e-6)


def test_early_stopping_restores_the_best_weights(features: pd.DataFrame) -> None:
    train, val = _windows(features)
    # Validation targets are the opposite of what training teaches: after the first epoch the
    # validation loss only gets worse, so the best epoch is 1 and training stops early.
    val = Constant(**{f.name: getattr(val, f.name) for f in dataclasses.fields(val)}, value=-3)
    train = Constant(**{f.name: getattr(train, f.name) for f in dataclasses.fields(train)}, value=3)
    model = _model(train.past.shape[2])
    seen: list[dict] = []
    cfg = TRAIN.model_copy(update={"patience": 2})
    metrics, state = fit(model, train, val, cfg, 1e-2, max_epochs=20, progress=seen.append)
    losses = [r["val_loss"] for r in seen]
    assert metrics["best_epoch"] == 1 == int(np.argmin(losses)) + 1
    assert metrics["epochs_run"] == 3 == len(seen)  # best epoch + patience
    assert set(seen[0]) == {"epoch", "train_loss", "val_loss", "lr", "elapsed"}
    assert eval_step(model, val, 256) == pytest.approx(losses[0], rel=1e-6)
    assert eval_step(model, val, 256) < losses[-1]
    # the optimizer state is the best epoch's too: one epoch of steps, not three
    batches = -(-len(train) // cfg.batch_size)
    assert {float(s["step"]) for s in state["state"].values()} == {float(batches)}


def test_same_seed_and_data_give_bitwise_identical_forecasts(features: pd.DataFrame) -> None:
    a = train_full(features, MODEL, TRAIN, 3, TRAIN_END)
    b = train_full(features, MODEL, TRAIN, 3, TRAIN_END)
    for k, v in a.module.state_dict().items():
        assert torch.equal(v, b.module.state_dict()[k]), k
    freq = {"S0": "B", "S1": "D"}
    pd.testing.assert_frame_equal(
        predict(a, features, TRAIN_END, freq),
        predict(b, features, TRAIN_END, freq),
        check_exact=True,
    )
    assert a.version == b.version and a.data_fingerprint == b.data_fingerprint
    assert a.kind == "full" and a.parent_version is None and a.series_ids == ["S0", "S1"]
    assert a.train_end == TRAIN_END and a.metrics["n_train_windows"] > 0
    assert {"best_val_loss", "epochs_run", "train_seconds", "best_epoch"} <= set(a.metrics)


def test_fine_tune_warm_starts_and_keeps_the_parent_scalers(features: pd.DataFrame) -> None:
    parent = train_full(features, MODEL, TRAIN, 3, TRAIN_END)
    before = copy.deepcopy(parent.module.state_dict())
    later = dt.date(2020, 11, 30)
    child = fine_tune(parent, features, TRAIN, later)
    assert child.kind == "finetune" and child.parent_version == parent.version
    assert child.scalers == parent.scalers and child.series_ids == parent.series_ids
    assert child.train_end == later
    assert child.train_start == parent.train_start  # the range replayed windows come from
    assert child.metrics["lineage"]["recent_start"] == str(
        later - dt.timedelta(days=TRAIN.finetune_window_days - 1)
    )
    assert child.metrics["epochs_run"] <= TRAIN.finetune_epochs
    assert child.version != parent.version
    for k, v in parent.module.state_dict().items():  # the parent itself is left untouched
        assert torch.equal(v, before[k])


def test_fingerprint_is_stable_and_sensitive(features: pd.DataFrame) -> None:
    columns = [schema.Y, *schema.PAST_FEATURES, *CAL]
    shuffled = features.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert data_fingerprint(features, columns) == data_fingerprint(shuffled, columns)
    changed = features.copy()
    changed.loc[5, schema.Y] += 1e-9
    assert data_fingerprint(changed, columns) != data_fingerprint(features, columns)
