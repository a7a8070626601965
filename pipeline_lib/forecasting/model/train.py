"""The training loop and the full training :func:`train_full`, on the steps of
:mod:`pipeline_lib.forecasting.model.steps` (seeding, the loss, one step, one evaluation, the
optimizer); the fine-tune is :mod:`pipeline_lib.forecasting.model.finetune`, on the same steps.

Every random choice is seeded by ``TrainingConfig.seed``, so the same inputs give bit-identical
weights.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.errors import NotEnoughHistory
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.model.base import fit_gate, fit_linear_base
from pipeline_lib.forecasting.model.lstm import LSTMForecaster
from pipeline_lib.forecasting.model.scaling import fit_scalers
from pipeline_lib.forecasting.model.steps import (
    OptimizerState,
    batch_of,
    eval_step,
    make_optimizer,
    set_seed,
    train_step,
)
from pipeline_lib.forecasting.model.threads import use_threads
from pipeline_lib.forecasting.model.trained import (
    TrainedModel,
    build_module,
    data_fingerprint,
    hyperparameters,
)
from pipeline_lib.forecasting.model.window_set import WindowSet
from pipeline_lib.forecasting.model.windows import (
    NO_COVARIATES,
    model_windows,
    require_columns,
    split_windows,
    training_rows,
)

Progress = Callable[[dict[str, Any]], None]
# A model of this version saved before (a rerun of the same night), or None: loaded instead of
# trained again, since the version is deterministic from everything that shapes the model.
Saved = Callable[[str], TrainedModel | None]


# torch's random generator, deterministic mode and thread count are process-wide: two trainings
# in threads of one process (a backfill's chunks on the thread pool) would draw from the same
# generator and stop being reproducible, so they take turns. Processes (Dask) train in parallel.
_TRAINING = threading.RLock()


def _one_at_a_time(fn: Callable[..., TrainedModel]) -> Callable[..., TrainedModel]:
    @functools.wraps(fn)
    def locked(*args: Any, **kwargs: Any) -> TrainedModel:
        with _TRAINING:
            return fn(*args, **kwargs)

    return locked


def _snapshot(
    model: LSTMForecaster, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], OptimizerState]:
    """Copies of the weights and the optimizer state, detached from further training."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return weights, copy.deepcopy(optimizer.state_dict())


def fit(
    model: LSTMForecaster,
    train: WindowSet,
    val: WindowSet,
    cfg: TrainingConfig,
    learning_rate: float,
    max_epochs: int,
    progress: Progress | None = None,
    optimizer_state: OptimizerState | None = None,
) -> tuple[dict[str, Any], OptimizerState]:
    """Adam with ReduceLROnPlateau, gradient clipping and early stopping on the validation loss.

    ``optimizer_state`` warm-starts Adam (see :func:`make_optimizer`). The weights of the best
    epoch are restored at the end, and the optimizer state is snapshotted at that same epoch, so
    the two match. Returns the training metrics and that optimizer state.
    """
    optimizer = make_optimizer(model, learning_rate, cfg, optimizer_state)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.5, patience=max(1, cfg.patience // 2)
    )
    shuffle = torch.Generator().manual_seed(cfg.seed)
    best_loss, best_epoch, bad_epochs = math.inf, 0, 0
    best_state, best_optimizer = _snapshot(model, optimizer)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        lr = float(optimizer.param_groups[0]["lr"])
        order = torch.randperm(len(train), generator=shuffle)
        total = 0.0
        for start in range(0, len(train), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            total += train_step(model, batch_of(train, idx), optimizer, cfg.grad_clip) * len(idx)
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
            best_state, best_optimizer = _snapshot(model, optimizer)
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    metrics = {
        "best_val_loss": best_loss,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "train_seconds": time.perf_counter() - started,
        "history": history,
    }
    return metrics, best_optimizer


def _fit_into(
    trained: TrainedModel,
    train: WindowSet,
    val: WindowSet,
    cfg: TrainingConfig,
    learning_rate: float,
    max_epochs: int,
    progress: Progress | None,
    n_rows: int,
    optimizer_state: OptimizerState | None,
    base_windows: WindowSet,
) -> TrainedModel:
    """Fit ``trained.module``; keep the metrics and the best epoch's optimizer state in it.

    A module with a linear base gets it fitted first, in closed form, on ``base_windows``;
    with a gate, the gate is chosen last, on ``val``
    (:func:`pipeline_lib.forecasting.model.base.fit_gate`).
    """
    base = None
    if trained.module.base == "linear":
        base = fit_linear_base(trained.module, base_windows)
    if trained.module.gate:  # the network trains with its whole correction
        trained.module.gate_weight.fill_(1.0)
    metrics, state = fit(
        trained.module, train, val, cfg, learning_rate, max_epochs, progress, optimizer_state
    )
    if trained.module.gate:  # then the correction is scaled where it adds error
        metrics["gate"] = fit_gate(trained.module, val)
    metrics.update(n_train_windows=len(train), n_val_windows=len(val), n_rows=n_rows)
    if base is not None:
        metrics["base"] = base
    trained.metrics, trained.optimizer_state = metrics, state
    return trained


def _run(
    trained: TrainedModel,
    frame: pd.DataFrame,
    cfg: TrainingConfig,
    learning_rate: float,
    max_epochs: int,
    progress: Progress | None,
) -> TrainedModel:
    """Window ``frame``, split by time, fit ``trained.module`` and record the metrics.

    A linear base is fitted on every window (its targets end by ``trained.target_end``, the
    validation windows included): a ridge needs no early stopping, and the newest windows are
    the ones its forecasts resemble most."""
    windows = model_windows(trained, frame, trained.target_end)
    train, val = split_windows(windows, cfg.val_fraction)
    n_rows = len(frame)
    return _fit_into(
        trained, train, val, cfg, learning_rate, max_epochs, progress, n_rows, None, windows
    )


@_one_at_a_time
def train_full(
    features: pd.DataFrame,
    model_cfg: ModelConfig,
    train_cfg: TrainingConfig,
    horizon: int,
    train_end: dt.date,
    progress: Progress | None = None,
    fit_end: dt.date | None = None,
    saved: Saved | None = None,
    feature_set: FeatureSet = NO_COVARIATES,
) -> TrainedModel:
    """Train a new model on the ``train_window_days`` ending ``train_end``.

    ``feature_set``: the covariates the model reads beyond the built-in features (the
    ``features`` must have its columns, see :class:`FeatureSet`); the scalers cover ``y``, its
    past columns and its lead columns.

    ``fit_end`` (default ``train_end``) is the last date a training target may have: windows
    whose targets reach past it are not trained on, and the scalers are fitted on rows up to
    it, so forecasts from origins on or after ``fit_end`` are out of sample (the backtest).
    Series with fewer than ``lookback + horizon`` rows in the window are left out.
    ``saved``: see :data:`Saved`.
    """
    set_seed(train_cfg.seed)
    use_threads(train_cfg.num_threads)
    require_columns(features, feature_set)
    first = pd.Timestamp(train_end) - pd.Timedelta(days=train_cfg.train_window_days - 1)
    frame = training_rows(features, first, train_end)
    counts = frame.groupby(schema.SERIES_ID).size()
    series_ids = sorted(str(s) for s in counts.index[counts >= model_cfg.lookback + horizon])
    if not series_ids:
        raise NotEnoughHistory(
            f"no series has lookback + horizon = {model_cfg.lookback + horizon} rows in the "
            f"training window up to {train_end}"
        )
    frame = frame.loc[frame[schema.SERIES_ID].isin(series_ids)]
    names, calendar = [schema.Y, *feature_set.past_columns], list(schema.CALENDAR_FEATURES)
    scaled = [*names, *feature_set.lead_columns]
    train_start = pd.Timestamp(frame[schema.DATE].min()).date()
    n_future = len(feature_set.future_covariates)
    hparams = hyperparameters(
        model_cfg, len(series_ids), len(names), len(calendar), horizon, n_future
    )
    trained = TrainedModel(
        module=build_module(hparams),
        scalers=fit_scalers(frame, fit_end or train_end, scaled, train_start),
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
        data_fingerprint=data_fingerprint(frame, scaled + calendar),
        training_config=train_cfg.model_dump(),
        fit_end=fit_end,
        feature_set=feature_set,
    )
    if saved is not None and (earlier := saved(trained.version)) is not None:
        return earlier
    return _run(trained, frame, train_cfg, train_cfg.learning_rate, train_cfg.max_epochs, progress)
