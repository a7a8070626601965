"""Fine-tuning: warm start from the parent's weights and Adam state at a lower learning rate,
recent windows plus a seeded replay of older ones, frozen or refitted scalers that never see
rows after the target end, reproducible results, and the lineage recorded."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.forecasting.model.finetune import fine_tune, finetune_windows
from pipeline_lib.forecasting.model.scaling import fit_scalers
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.model.window_set import WindowSet
from pipeline_lib.forecasting.model.windows import make_windows, series_arrays

MODEL = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, dropout=0.0)
TRAIN = TrainingConfig(
    max_epochs=2, batch_size=64, train_window_days=365, finetune_epochs=2, finetune_window_days=60
)
PARENT_END = dt.date(2020, 9, 30)
LATER = dt.date(2020, 11, 30)
RECENT_START = LATER - dt.timedelta(days=TRAIN.finetune_window_days - 1)
NAMES = [schema.Y, *schema.PAST_FEATURES]
CAL = list(schema.CALENDAR_FEATURES)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return random_walk_features(n_series=2, n_days=260, weekly_signal=0.02)  # to 2020-12-29


@pytest.fixture(scope="module")
def parent(features: pd.DataFrame) -> TrainedModel:
    return train_full(features, MODEL, TRAIN, 3, PARENT_END)


@pytest.fixture(scope="module")
def windows(features: pd.DataFrame) -> WindowSet:
    scalers = fit_scalers(features, LATER, NAMES)
    arrays = series_arrays(features, scalers, ["S0", "S1"], CAL)
    return make_windows(arrays, MODEL.lookback, 3, len(CAL), cutoff=LATER)


def _steps(state: dict) -> set[float]:
    """Adam's step counts over all parameters (one value when they were all stepped alike)."""
    return {float(entries["step"]) for entries in state["state"].values()}


def _batches(model: TrainedModel) -> int:
    return math.ceil(model.metrics["n_train_windows"] / TRAIN.batch_size)


def _same_weights(a: TrainedModel, b: TrainedModel) -> bool:
    sa, sb = a.module.state_dict(), b.module.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in sa.items())


def test_fine_tune_continues_the_parents_adam_state(
    parent: TrainedModel, features: pd.DataFrame
) -> None:
    parent_state = copy.deepcopy(parent.optimizer_state)
    (parent_steps,) = _steps(parent.optimizer_state)
    assert parent_steps == parent.metrics["best_epoch"] * _batches(parent)
    child = fine_tune(parent, features, TRAIN, LATER)
    # the step counts continue from the parent's: its steps plus the child's up to its best epoch
    assert _steps(child.optimizer_state) == {
        parent_steps + child.metrics["best_epoch"] * _batches(child)
    }
    assert child.metrics["lineage"]["optimizer_state_loaded"] is True
    # the parent's record is not advanced in place by the child's training
    assert _steps(parent.optimizer_state) == _steps(parent_state)
    for index, entries in parent_state["state"].items():
        for name, value in entries.items():
            assert torch.equal(value, parent.optimizer_state["state"][index][name])
    # without a parent state Adam starts afresh, which trains to other weights
    cold = fine_tune(dataclasses.replace(parent, optimizer_state=None), features, TRAIN, LATER)
    assert _steps(cold.optimizer_state) == {cold.metrics["best_epoch"] * _batches(cold)}
    assert cold.metrics["lineage"]["optimizer_state_loaded"] is False
    assert not _same_weights(cold, child)
    # a fine-tune of the fine-tune continues the chain and replays from the same range
    grandchild = fine_tune(child, features, TRAIN, dt.date(2020, 12, 15))
    (child_steps,) = _steps(child.optimizer_state)
    assert min(_steps(grandchild.optimizer_state)) > child_steps
    assert grandchild.parent_version == child.version
    assert grandchild.train_start == child.train_start == parent.train_start


def test_fine_tune_uses_the_lower_learning_rate(
    parent: TrainedModel, features: pd.DataFrame
) -> None:
    seen: list[dict] = []
    child = fine_tune(parent, features, TRAIN, LATER, progress=seen.append)
    lr = TRAIN.learning_rate * TRAIN.finetune_lr_factor
    assert parent.optimizer_state["param_groups"][0]["lr"] == TRAIN.learning_rate  # not kept
    assert seen and all(record["lr"] == pytest.approx(lr) for record in seen)
    assert child.optimizer_state["param_groups"][0]["lr"] == pytest.approx(lr)
    assert child.metrics["lineage"]["learning_rate"] == pytest.approx(lr)


def test_replay_sample_is_sized_seeded_and_older(windows: WindowSet) -> None:
    split = finetune_windows(windows, RECENT_START, TRAIN)
    recent_start = np.datetime64(pd.Timestamp(RECENT_START).as_unit("ns"))
    # validation: the last val_fraction of the recent origin dates, recent windows only
    recent_dates = np.unique(windows.origin_date[windows.origin_date >= recent_start])
    n_val = max(1, round(len(recent_dates) * TRAIN.val_fraction))
    val_start = recent_dates[-n_val]
    assert set(split.val.origin_date) == set(recent_dates[-n_val:])
    # training: recent windows ending before validation + the replay sample, no duplicates
    recent = split.train.origin_date >= recent_start
    expected_recent = (windows.origin_date >= recent_start) & (windows.target_end_date <= val_start)
    assert split.n_recent == int(recent.sum()) == int(expected_recent.sum()) > 0
    assert split.n_replay == int((~recent).sum()) == round(0.5 * split.n_recent)
    assert (split.train.target_end_date <= val_start).all()
    pairs = zip(split.train.series_index.tolist(), split.train.origin_index.tolist(), strict=True)
    keys = set(pairs)
    assert len(keys) == len(split.train)
    assert split.n_replay_pool == int(
        ((windows.origin_date < recent_start) & (windows.target_end_date <= val_start)).sum()
    )
    # deterministic: the same seed draws the same windows, another seed others
    again = finetune_windows(windows, RECENT_START, TRAIN)
    assert np.array_equal(again.train.origin_date, split.train.origin_date)
    assert torch.equal(again.train.past, split.train.past)
    other = finetune_windows(windows, RECENT_START, TRAIN.model_copy(update={"seed": 7}))
    assert other.n_replay == split.n_replay
    assert not np.array_equal(other.train.origin_date, split.train.origin_date)
    # no replay at fraction 0; the whole pool (not more) when the fraction asks for more
    none = finetune_windows(
        windows, RECENT_START, TRAIN.model_copy(update={"finetune_replay_fraction": 0})
    )
    assert none.n_replay == 0 and (none.train.origin_date >= recent_start).all()
    short = windows.subset(windows.origin_date >= np.datetime64("2020-09-01"))  # a small pool
    full = finetune_windows(
        short, RECENT_START, TRAIN.model_copy(update={"finetune_replay_fraction": 5})
    )
    assert 0 < full.n_replay_pool < 5 * full.n_recent
    assert full.n_replay == full.n_replay_pool == len(full.train) - full.n_recent


def test_fine_tune_is_reproducible_and_depends_on_the_replay(
    parent: TrainedModel, features: pd.DataFrame
) -> None:
    a = fine_tune(parent, features, TRAIN, LATER)
    b = fine_tune(parent, features, TRAIN, LATER)
    assert _same_weights(a, b) and a.version == b.version
    assert _steps(a.optimizer_state) == _steps(b.optimizer_state)
    less = TRAIN.model_copy(update={"finetune_replay_fraction": 0.25})
    c = fine_tune(parent, features, less, LATER)
    assert not _same_weights(a, c) and c.version != a.version
    lineage_a, lineage_c = a.metrics["lineage"], c.metrics["lineage"]
    assert lineage_c["n_replay_windows"] == round(0.25 * lineage_c["n_recent_windows"])
    assert lineage_c["n_replay_windows"] < lineage_a["n_replay_windows"]


def test_frozen_and_refit_scalers(parent: TrainedModel, features: pd.DataFrame) -> None:
    frozen = fine_tune(parent, features, TRAIN, LATER)
    assert frozen.scalers == parent.scalers and frozen.metrics["lineage"]["scalers"] == "frozen"
    refit = fine_tune(
        parent, features, TRAIN.model_copy(update={"finetune_scalers": "refit"}), LATER
    )
    # fitted on the fine-tune's range (the parent's train_start on) up to train_end
    expected = fit_scalers(features, LATER, NAMES, parent.train_start)
    assert refit.scalers == expected != parent.scalers
    assert refit.metrics["lineage"]["scalers"] == "refit"
    assert not _same_weights(refit, frozen)  # the windows were scaled by the new scalers


def test_refit_never_sees_rows_after_the_target_end(
    parent: TrainedModel, features: pd.DataFrame
) -> None:
    fit_end = dt.date(2020, 11, 16)
    cfg = TRAIN.model_copy(update={"finetune_scalers": "refit"})
    later_rows = features[schema.DATE] > pd.Timestamp(fit_end)
    tampered = features.copy()
    tampered.loc[later_rows, schema.Y] *= 3.0
    tampered.loc[later_rows, list(schema.PAST_FEATURES)] += 5.0
    a = fine_tune(parent, features, cfg, LATER, fit_end=fit_end)
    b = fine_tune(parent, tampered, cfg, LATER, fit_end=fit_end)
    assert a.data_fingerprint != b.data_fingerprint  # the changed rows were in the input ...
    assert a.scalers == b.scalers and _same_weights(a, b)  # ... and changed nothing
    assert a.scalers == fit_scalers(features, fit_end, NAMES, parent.train_start)
    # without the fit_end the same rows would have changed the refitted scalers
    assert fine_tune(parent, tampered, cfg, LATER).scalers != a.scalers


def test_lineage_is_recorded(parent: TrainedModel, features: pd.DataFrame) -> None:
    child = fine_tune(parent, features, TRAIN, LATER)
    lineage = child.metrics["lineage"]
    assert lineage == {
        "parent_version": parent.version,
        "recent_start": RECENT_START.isoformat(),
        "replay_start": parent.train_start.isoformat(),
        "n_recent_windows": lineage["n_recent_windows"],
        "n_replay_windows": round(0.5 * lineage["n_recent_windows"]),
        "n_replay_pool": lineage["n_replay_pool"],
        "replay_fraction": 0.5,
        "scalers": "frozen",
        "optimizer_state_loaded": True,
        "learning_rate": pytest.approx(TRAIN.learning_rate * TRAIN.finetune_lr_factor),
    }
    assert lineage["n_replay_pool"] > lineage["n_replay_windows"] > 0
    n_train = child.metrics["n_train_windows"]
    assert n_train == lineage["n_recent_windows"] + lineage["n_replay_windows"]
    assert child.training_config["finetune_replay_fraction"] == 0.5


def test_optimizer_state_of_another_architecture_is_refused(
    parent: TrainedModel, features: pd.DataFrame
) -> None:
    state = copy.deepcopy(parent.optimizer_state)
    state["state"][0]["exp_avg"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="shape"):
        fine_tune(dataclasses.replace(parent, optimizer_state=state), features, TRAIN, LATER)
    state = copy.deepcopy(parent.optimizer_state)
    state["param_groups"][0]["params"] = state["param_groups"][0]["params"][:-1]
    with pytest.raises(ValueError, match="covers"):
        fine_tune(dataclasses.replace(parent, optimizer_state=state), features, TRAIN, LATER)
