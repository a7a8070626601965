"""Training in small named steps: seeding, the loss, one step, one evaluation, the optimizer,
the loop, and the two entry points :func:`train_full` and :func:`fine_tune`.

A fine-tune warm-starts from a parent model (weights and Adam state), trains at a lower learning
rate on the recent windows plus a seeded replay sample of older ones (against forgetting), and
records its lineage in its metrics. Every random choice is seeded by ``TrainingConfig.seed``, so
the same inputs give bit-identical weights.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.errors import NotEnoughHistory
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.model.base import fit_gate, fit_linear_base
from pipeline_lib.model.lstm import LSTMForecaster
from pipeline_lib.model.scaling import SeriesScalers, fit_scalers
from pipeline_lib.model.trained import (
    TrainedModel,
    build_module,
    data_fingerprint,
    hyperparameters,
)
from pipeline_lib.model.windows import (
    NO_COVARIATES,
    WindowSet,
    model_windows,
    require_columns,
    split_windows,
    training_rows,
)

Progress = Callable[[dict[str, Any]], None]
# A model of this version saved before (a rerun of the same night), or None: loaded instead of
# trained again, since the version is deterministic from everything that shapes the model.
Saved = Callable[[str], TrainedModel | None]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
OptimizerState = dict[str, Any]  # a torch ``Optimizer.state_dict()``


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


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch, and make torch use deterministic algorithms only.

    Deterministic mode also fills every new tensor with NaN by default, a safety net for kernels
    that read memory they never wrote; ours do not, and the fills cost about 15% of a training
    step on CPU (bench/train_speed.py), so they are off. Results stay bit-identical (a test).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    # a property of the module's class (torch/utils/deterministic.py), which mypy cannot see
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def pinball_loss(
    pred: torch.Tensor, target: torch.Tensor, quantiles: tuple[float, ...]
) -> torch.Tensor:
    """Mean quantile (pinball) loss: pred [batch, horizon, Q], target [batch, horizon]."""
    q = torch.tensor(quantiles, dtype=pred.dtype)  # [Q]
    err = target.unsqueeze(-1) - pred  # [batch, horizon, Q]
    return torch.maximum(q * err, (q - 1) * err).mean()


def _batch(w: WindowSet, idx: torch.Tensor) -> Batch:
    past, future, target = w.batch(idx)  # gathered now: no [N, lookback, F] copy is kept
    return past, future, w.series_index[idx], target


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


def check_optimizer_state(state: OptimizerState, params: list[torch.nn.Parameter]) -> None:
    """Raise ``ValueError`` unless ``state`` belongs to an optimizer over ``params``' shapes.

    ``Optimizer.load_state_dict`` only compares parameter counts; a state saved for another
    architecture would otherwise fail later, deep inside ``step``, or silently broadcast.
    """
    indices = sorted(int(i) for group in state["param_groups"] for i in group["params"])
    if indices != list(range(len(params))):
        raise ValueError(
            f"optimizer state covers {len(indices)} parameters, the model has {len(params)}"
        )
    for index, entries in state["state"].items():
        shape = tuple(params[int(index)].shape)
        for name, value in entries.items():
            if torch.is_tensor(value) and value.dim() > 0 and tuple(value.shape) != shape:
                raise ValueError(
                    f"optimizer state {name!r} of parameter {index} has shape "
                    f"{tuple(value.shape)}, the parameter has {shape}: not this model's state"
                )


def make_optimizer(
    model: LSTMForecaster,
    learning_rate: float,
    cfg: TrainingConfig,
    state: OptimizerState | None = None,
) -> torch.optim.Adam:
    """Adam over ``model``'s parameters (the fused kernel: one update for all parameters),
    warm-started from ``state`` when given.

    ``state`` is deep-copied before loading: ``load_state_dict`` keeps the given tensors and
    Adam updates its moments and step counts in place, which would alter the parent's record.
    The moments and step counts carry over; the hyper-parameters do not: every group's ``lr``
    and ``weight_decay`` are set from the arguments after loading.
    """
    optimizer = torch.optim.Adam(
        model.parameters(), lr=learning_rate, weight_decay=cfg.weight_decay, fused=True
    )
    if state is not None:
        check_optimizer_state(state, list(model.parameters()))
        optimizer.load_state_dict(copy.deepcopy(state))
        for group in optimizer.param_groups:
            group["lr"], group["weight_decay"] = learning_rate, cfg.weight_decay
    return optimizer


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
    with a gate, the gate is chosen last, on ``val`` (:func:`pipeline_lib.model.base.fit_gate`).
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
    torch.set_num_threads(train_cfg.num_threads)
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


@dataclasses.dataclass(frozen=True)
class FinetuneWindows:
    """The windows of one fine-tune and how they were chosen (for the lineage record)."""

    train: WindowSet  # recent training windows + replayed older windows
    val: WindowSet  # recent windows only
    n_recent: int  # recent training windows
    n_replay: int  # older windows replayed
    n_replay_pool: int  # older windows that could have been replayed


def finetune_windows(
    windows: WindowSet, recent_start: dt.date | pd.Timestamp, cfg: TrainingConfig
) -> FinetuneWindows:
    """Split ``windows`` for a fine-tune into validation, recent training and replay windows.

    Recent windows have their origin on or after ``recent_start``. Validation is the recent
    windows whose origin is in the last ``val_fraction`` of the distinct recent origin dates: the
    fine-tune is judged on recent data only. Training is (a) the recent windows whose targets
    end on or before the first validation origin (as in :func:`split_windows`) and (b) a replay
    sample of ``round(finetune_replay_fraction * n_recent)`` older windows (origin before
    ``recent_start``, targets also ending by the first validation origin), drawn without
    replacement by a ``torch.Generator`` seeded with ``cfg.seed`` (all of them when fewer), so
    the model keeps what it learnt from older data. Masks over one :class:`WindowSet`, no copy
    per window.
    """
    recent = windows.origin_date >= np.datetime64(pd.Timestamp(recent_start).as_unit("ns"))
    dates = np.unique(windows.origin_date[recent])
    n_val = max(1, int(round(len(dates) * cfg.val_fraction)))
    if len(dates) <= n_val:
        raise ValueError(
            f"too few recent origin dates ({len(dates)}) since {pd.Timestamp(recent_start).date()}"
            " for a train/validation split: increase finetune_window_days"
        )
    val_start = dates[-n_val]
    before_val = windows.target_end_date <= val_start
    recent_train = recent & before_val
    pool = np.flatnonzero(~recent & before_val)
    n_recent = int(recent_train.sum())
    if n_recent == 0:
        raise ValueError("no recent training window ends before the validation period")
    n_replay = min(len(pool), int(round(cfg.finetune_replay_fraction * n_recent)))
    generator = torch.Generator().manual_seed(cfg.seed)
    replay = np.zeros(len(windows), dtype=bool)
    replay[pool[torch.randperm(len(pool), generator=generator)[:n_replay].numpy()]] = True
    return FinetuneWindows(
        train=windows.subset(recent_train | replay),
        val=windows.subset(windows.origin_date >= val_start),
        n_recent=n_recent,
        n_replay=n_replay,
        n_replay_pool=len(pool),
    )


def _finetune_rows(
    parent: TrainedModel,
    features: pd.DataFrame,
    cfg: TrainingConfig,
    train_end: dt.date,
    recent_start: pd.Timestamp,
) -> pd.DataFrame:
    """The parent's series' rows from the start of the fine-tune's range up to ``train_end``.

    The range starts at the parent's ``train_start``, but no earlier than ``train_window_days``
    before ``train_end`` (a chain of fine-tunes never looks at more history than a full training
    would) and no later than ``recent_start``. Windows (recent and replayed) and refitted
    scalers come from these rows only.
    """
    window_start = pd.Timestamp(train_end) - pd.Timedelta(days=cfg.train_window_days - 1)
    first = min(max(pd.Timestamp(parent.train_start), window_start), recent_start)
    frame = training_rows(features, first, train_end, series_ids=parent.series_ids)
    if not (frame[schema.DATE] >= recent_start).any():
        raise ValueError(f"no rows between {recent_start.date()} and {train_end} to fine-tune on")
    return frame


def finetune_scalers(
    parent: TrainedModel, frame: pd.DataFrame, target_end: dt.date, mode: str
) -> SeriesScalers:
    """``"frozen"``: the parent's scalers (the warm-started weights expect their inputs).
    ``"refit"``: scalers fitted on ``frame``'s rows dated on or before ``target_end`` (never
    later rows); a series without such rows keeps the parent's scaler.
    """
    if mode == "frozen":
        return parent.scalers
    if mode != "refit":
        raise ValueError(f"finetune_scalers must be 'frozen' or 'refit', got {mode!r}")
    fitted = fit_scalers(frame, target_end, parent.scaled_columns)
    old = parent.scalers
    pick = {s: fitted if s in fitted.mean else old for s in parent.series_ids}
    return SeriesScalers(
        columns=list(parent.scaled_columns),
        mean={s: scalers.mean[s] for s, scalers in pick.items()},
        scale={s: scalers.scale[s] for s, scalers in pick.items()},
    )


@_one_at_a_time
def fine_tune(
    parent: TrainedModel,
    features: pd.DataFrame,
    train_cfg: TrainingConfig,
    train_end: dt.date,
    progress: Progress | None = None,
    fit_end: dt.date | None = None,
    saved: Saved | None = None,
) -> TrainedModel:
    """Continue training ``parent`` on recent data, without forgetting the older data.

    - Warm start: the parent's weights and, when it has one, its Adam state (moments and step
      counts), with every group's learning rate set to ``learning_rate * finetune_lr_factor``;
      ``finetune_epochs`` at most. The parent itself is left untouched.
    - Inputs: the parent's feature set (its covariates; ``features`` must have their columns).
    - Data: the parent's series, rows from its training range (see :func:`_finetune_rows`) up
      to ``train_end``; ``fit_end`` (default ``train_end``) is the last date a target may have.
      Recent windows have their origin in the ``finetune_window_days`` up to ``fit_end``; a
      seeded replay sample of older windows joins training (see :func:`finetune_windows`).
    - Scalers: ``finetune_scalers`` says frozen (the parent's) or refit (see
      :func:`finetune_scalers`).
    - Linear base (when the model has one): refitted in closed form on every window of the
      range (targets up to ``fit_end``), so it follows the newest data as the per-origin
      linear baseline does.
    - Lineage: ``metrics["lineage"]`` records the parent, the window counts, the replay
      fraction, the scalers mode, whether the optimizer state was loaded and the learning rate.
      ``train_start`` is the start of the range, so a fine-tune of this model replays from it.
    - ``saved``: see :data:`Saved`.
    """
    set_seed(train_cfg.seed)
    torch.set_num_threads(train_cfg.num_threads)
    require_columns(features, parent.feature_set)
    # the recent window ends at the last date a target may have: after fit_end there is
    # nothing to train on (it is the backtest hold-out)
    target_end = pd.Timestamp(fit_end or train_end)
    recent_start = target_end - pd.Timedelta(days=train_cfg.finetune_window_days - 1)
    frame = _finetune_rows(parent, features, train_cfg, train_end, recent_start)
    module = build_module(parent.hyperparameters)
    module.load_state_dict(parent.module.state_dict())
    trained = dataclasses.replace(
        parent,
        module=module,
        scalers=finetune_scalers(parent, frame, fit_end or train_end, train_cfg.finetune_scalers),
        train_start=pd.Timestamp(frame[schema.DATE].min()).date(),
        train_end=train_end,
        kind="finetune",
        parent_version=parent.version,
        metrics={},
        data_fingerprint=data_fingerprint(frame, parent.scaled_columns + parent.calendar_features),
        training_config=train_cfg.model_dump(),
        fit_end=fit_end,
        optimizer_state=None,
    )
    if saved is not None and (earlier := saved(trained.version)) is not None:
        return earlier
    windows = model_windows(trained, frame, trained.target_end)
    split = finetune_windows(windows, recent_start, train_cfg)
    lr = train_cfg.learning_rate * train_cfg.finetune_lr_factor
    epochs, state = train_cfg.finetune_epochs, parent.optimizer_state
    # the base is refitted on every window of the range (recent and older, validation
    # included, as in a full training), not on the replay sample only
    _fit_into(
        trained,
        split.train,
        split.val,
        train_cfg,
        lr,
        epochs,
        progress,
        len(frame),
        state,
        base_windows=windows,
    )
    trained.metrics["lineage"] = {
        "parent_version": parent.version,
        "recent_start": recent_start.date().isoformat(),
        "replay_start": trained.train_start.isoformat(),
        "n_recent_windows": split.n_recent,
        "n_replay_windows": split.n_replay,
        "n_replay_pool": split.n_replay_pool,
        "replay_fraction": train_cfg.finetune_replay_fraction,
        "scalers": train_cfg.finetune_scalers,
        "optimizer_state_loaded": state is not None,
        "learning_rate": lr,
    }
    return trained
