"""The fine-tune: a parent model (weights and Adam state) warm-started and trained at a lower
learning rate on the recent windows plus a seeded replay sample of older ones (against
forgetting), its lineage recorded in its metrics. The steps are
:mod:`pipeline_lib.forecasting.model.train`'s; every random choice is seeded by
``TrainingConfig.seed``, so the same inputs give bit-identical weights.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.config import TrainingConfig
from pipeline_lib.forecasting.model.scaling import SeriesScalers, fit_scalers
from pipeline_lib.forecasting.model.steps import set_seed
from pipeline_lib.forecasting.model.threads import use_threads
from pipeline_lib.forecasting.model.train import Progress, Saved, _fit_into, _one_at_a_time
from pipeline_lib.forecasting.model.trained import TrainedModel, build_module, data_fingerprint
from pipeline_lib.forecasting.model.window_set import WindowSet
from pipeline_lib.forecasting.model.windows import model_windows, require_columns, training_rows


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
    use_threads(train_cfg.num_threads)
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
