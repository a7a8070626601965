"""Training in small named steps: seeding, the loss, one step, one evaluation, the loop, and the
two entry points :func:`train_full` and :func:`fine_tune`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.model.lstm import LSTMForecaster
from pipeline_lib.model.scaling import fit_scalers
from pipeline_lib.model.trained import (
    TrainedModel,
    build_module,
    data_fingerprint,
    hyperparameters,
)
from pipeline_lib.model.windows import (
    WindowSet,
    make_windows,
    series_arrays,
    split_windows,
    training_rows,
)

Progress = Callable[[dict[str, Any]], None]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch, and make torch use deterministic algorithms only."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def pinball_loss(
    pred: torch.Tensor, target: torch.Tensor, quantiles: tuple[float, ...]
) -> torch.Tensor:
    """Mean quantile (pinball) loss: pred [batch, horizon, Q], target [batch, horizon]."""
    q = torch.tensor(quantiles, dtype=pred.dtype)  # [Q]
    err = target.unsqueeze(-1) - pred  # [batch, horizon, Q]
    return torch.maximum(q * err, (q - 1) * err).mean()


def _batch(w: WindowSet, idx: torch.Tensor) -> Batch:
    return w.past[idx], w.future[idx], w.series_index[idx], w.target[idx]


def train_step(
    model: LSTMForecaster, batch: Batch, optimizer: torch.optim.Optimizer, grad_clip: float
) -> float:
    """One optimisation step on one batch; returns the batch loss."""
    past, future, series, target = batch
    model.train()
    optimizer.zero_grad()
    loss = pinball_loss(model(past, future, series), target, model.quantiles)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def eval_step(model: LSTMForecaster, windows: WindowSet, batch_size: int) -> float:
    """Mean pinball loss over all ``windows`` in eval mode."""
    model.eval()
    total = 0.0
    for start in range(0, len(windows), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(windows)))
        past, future, series, target = _batch(windows, idx)
        total += float(pinball_loss(model(past, future, series), target, model.quantiles)) * len(
            idx
        )
    return total / len(windows)


def fit(
    model: LSTMForecaster,
    train: WindowSet,
    val: WindowSet,
    cfg: TrainingConfig,
    learning_rate: float,
    max_epochs: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Adam with ReduceLROnPlateau, gradient clipping and early stopping on the validation loss.

    The weights of the best epoch are restored at the end. Returns the training metrics.
    """
    optimizer = torch.optim.Adam(
        model.parameters(), lr=learning_rate, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.5, patience=max(1, cfg.patience // 2)
    )
    shuffle = torch.Generator().manual_seed(cfg.seed)
    best_loss, best_epoch, bad_epochs = math.inf, 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        lr = float(optimizer.param_groups[0]["lr"])
        order = torch.randperm(len(train), generator=shuffle)
        total = 0.0
        for start in range(0, len(train), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            total += train_step(model, _batch(train, idx), optimizer, cfg.grad_clip) * len(idx)
        train_loss = total / len(train)
        val_loss = eval_step(model, val, cfg.batch_size)
        scheduler.step(val_loss)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": lr,
            "elapsed": time.perf_counter() - started,
        }
        history.append(record)
        if progress is not None:
            progress(dict(record))
        if val_loss < best_loss:
            best_loss, best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return {
        "best_val_loss": best_loss,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "train_seconds": time.perf_counter() - started,
        "history": history,
    }


def _run(
    trained: TrainedModel,
    frame: pd.DataFrame,
    cfg: TrainingConfig,
    learning_rate: float,
    max_epochs: int,
    progress: Progress | None,
) -> TrainedModel:
    """Window ``frame``, split, fit ``trained.module`` and record the metrics in ``trained``."""
    arrays = series_arrays(frame, trained.scalers, trained.series_ids, trained.calendar_features)
    n_cal, end = len(trained.calendar_features), trained.train_end
    windows = make_windows(arrays, trained.lookback, trained.horizon, n_cal, cutoff=end)
    train, val = split_windows(windows, cfg.val_fraction)
    metrics = fit(trained.module, train, val, cfg, learning_rate, max_epochs, progress)
    metrics.update(n_train_windows=len(train), n_val_windows=len(val), n_rows=len(frame))
    trained.metrics = metrics
    return trained


def train_full(
    features: pd.DataFrame,
    model_cfg: ModelConfig,
    train_cfg: TrainingConfig,
    horizon: int,
    train_end: dt.date,
    progress: Progress | None = None,
) -> TrainedModel:
    """Train a new model on the ``train_window_days`` ending ``train_end`` (scalers fitted there).

    Series with fewer than ``lookback + horizon`` rows in the window are left out.
    """
    set_seed(train_cfg.seed)
    torch.set_num_threads(train_cfg.num_threads)
    first = pd.Timestamp(train_end) - pd.Timedelta(days=train_cfg.train_window_days - 1)
    frame = training_rows(features, first, train_end)
    counts = frame.groupby(schema.SERIES_ID).size()
    series_ids = sorted(str(s) for s in counts.index[counts >= model_cfg.lookback + horizon])
    if not series_ids:
        raise ValueError(f"no series has {model_cfg.lookback + horizon} rows up to {train_end}")
    frame = frame.loc[frame[schema.SERIES_ID].isin(series_ids)]
    names, calendar = [schema.Y, *schema.PAST_FEATURES], list(schema.CALENDAR_FEATURES)
    train_start = pd.Timestamp(frame[schema.DATE].min()).date()
    hparams = hyperparameters(model_cfg, len(series_ids), len(names), len(calendar), horizon)
    trained = TrainedModel(
        module=build_module(hparams),
        scalers=fit_scalers(frame, train_end, names, train_start),
        series_ids=series_ids,
        feature_names=names,
        calendar_features=calendar,
        hyperparameters=hparams,
        horizon=horizon,
        quantiles=list(model_cfg.quantiles),
        train_start=train_start,
        train_end=train_end,
        kind="full",
        parent_version=None,
        metrics={},
        data_fingerprint=data_fingerprint(frame, names + calendar),
        training_config=train_cfg.model_dump(),
    )
    return _run(trained, frame, train_cfg, train_cfg.learning_rate, train_cfg.max_epochs, progress)


def fine_tune(
    parent: TrainedModel,
    features: pd.DataFrame,
    train_cfg: TrainingConfig,
    train_end: dt.date,
    progress: Progress | None = None,
) -> TrainedModel:
    """Warm-start from ``parent`` on its series' last ``finetune_window_days`` up to
    ``train_end`` (plus ``lookback`` rows of context before), with the learning rate times
    ``finetune_lr_factor`` for ``finetune_epochs``. The parent's scalers are kept frozen.
    """
    set_seed(train_cfg.seed)
    torch.set_num_threads(train_cfg.num_threads)
    first = pd.Timestamp(train_end) - pd.Timedelta(days=train_cfg.finetune_window_days - 1)
    frame = training_rows(features, first, train_end, parent.lookback, parent.series_ids)
    if frame.empty:
        raise ValueError(f"no rows between {first.date()} and {train_end} to fine-tune on")
    module = build_module(parent.hyperparameters)
    module.load_state_dict(parent.module.state_dict())
    trained = dataclasses.replace(
        parent,
        module=module,
        train_start=pd.Timestamp(frame.loc[frame[schema.DATE] >= first, schema.DATE].min()).date(),
        train_end=train_end,
        kind="finetune",
        parent_version=parent.version,
        metrics={},
        data_fingerprint=data_fingerprint(frame, parent.feature_names + parent.calendar_features),
        training_config=train_cfg.model_dump(),
    )
    lr = train_cfg.learning_rate * train_cfg.finetune_lr_factor
    return _run(trained, frame, train_cfg, lr, train_cfg.finetune_epochs, progress)
