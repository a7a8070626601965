"""The backtest's refits of the LSTM's linear base, shared between models and kept from one
night to the next (the ``shared`` store of :func:`pipeline_lib.forecasting.model.base.refit_to`).

The backtest refits each scored model's base at the hold-out start. The ridge reads the
windows, never the network's weights, so a refit depends only on the rows its windows are
built from and on what the model builds them with, and it is kept under both:

- the **model's inputs**: the date, the series and rows asked for, the model's scalers, series,
  calendar and covariate inputs, look-back, horizon, asinh rows and hyper-parameters;
- the **rows**: a digest of every column and value of the rows read, in their order.

Two models with the same inputs share a refit: a fine-tune keeps its parent's scalers
(``training.finetune_scalers = "frozen"``), so tonight's challenger and the champion read the
same windows. So does the next night's backtest when the hold-out start has not moved (the
origins move every ``backtest.step`` rows: every second night by default) and no row before it
was revised. A kept refit is what the fit gives, bit for bit; a missing, torn or foreign file
costs its recomputation, never the night.

Files: ``<folder>/<date>-<digest>.npz`` (``fitted`` bool [S]: the series the fit reached, those
with two windows or more; ``weight`` [S, H, width] and ``bias`` [S, H] in the module's dtype),
written atomically; a store deletes the files dated more than :data:`KEEP_DAYS` before the
first refit it writes.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging

import numpy as np
import pandas as pd
import torch

from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.store.fs import atomic_write_bytes, filesystem

log = logging.getLogger(__name__)

KEEP_DAYS = 31  # refits dated this many days before a night's are deleted (a month back)

# the series fitted, the base's weight and bias; None: no window (the model kept as it is)
Refit = tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None


def refit_key(
    trained: TrainedModel, as_of: dt.date, ids: list[str], rows: int | None, frame: pd.DataFrame
) -> str:
    """``<date>-<sha256>`` of everything a refit reads: the model's inputs and ``frame``."""
    inputs = {
        "as_of": str(as_of),
        "series": ids,
        "rows": rows,
        "window_days": trained.training_config.get("train_window_days") if rows is None else None,
        "scalers": trained.scalers.to_dict(),
        "series_ids": trained.series_ids,
        "calendar": trained.calendar_features,
        "feature_set": trained.feature_set.to_dict(),
        "lookback": trained.lookback,
        "horizon": trained.horizon,
        "asinh_rows": trained.asinh_rows,
        "hyperparameters": trained.hyperparameters,
        "columns": [[str(c), str(t)] for c, t in frame.dtypes.items()],
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return f"{pd.Timestamp(as_of).date().isoformat()}-{digest.hexdigest()[:32]}"


def with_base(trained: TrainedModel, refit: Refit) -> TrainedModel:
    """``trained`` with ``refit``'s base on the series it fitted, its own on the others (as its
    own fit keeps them); ``trained`` itself for no refit."""
    if refit is None:
        return trained
    fitted, weight, bias = refit
    module = copy.deepcopy(trained.module)
    module.base_weight[fitted] = weight[fitted]
    module.base_bias[fitted] = bias[fitted]
    return dataclasses.replace(trained, module=module)


class RefitStore:
    """Refits by :func:`refit_key`: in memory, and in the folder ``url`` when given (None: the
    memory of one backtest only)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url.rstrip("/") if url else None
        self.memory: dict[str, Refit] = {}
        self.read = 0  # refits found in the folder
        self._pruned = False

    def get(self, key: str) -> tuple[bool, Refit]:
        """(found, refit) for ``key``."""
        if key in self.memory:
            return True, self.memory[key]
        refit = self._load(key) if self.url else None
        if refit is None:
            return False, None
        self.memory[key] = refit
        self.read += 1
        return True, refit

    def put(self, key: str, refit: Refit) -> None:
        """Keep ``refit`` under ``key`` (in the folder too, unless it is None: nothing to keep)."""
        self.memory[key] = refit
        if self.url is None or refit is None:
            return
        fitted, weight, bias = refit
        buffer = io.BytesIO()
        np.savez(buffer, fitted=fitted.numpy(), weight=weight.numpy(), bias=bias.numpy())
        try:
            atomic_write_bytes(f"{self.url}/{key}.npz", buffer.getvalue())
            if not self._pruned:
                self._pruned = True
                self._prune(dt.date.fromisoformat(key[:10]) - dt.timedelta(days=KEEP_DAYS))
        except Exception as exc:  # the store only saves time: a failed write is not a failed night
            log.warning("base refit %s not kept in %s: %s", key, self.url, exc)

    def _load(self, key: str) -> Refit:
        path = f"{self.url}/{key}.npz"
        try:
            fs, inside = filesystem(path)
            if not fs.exists(inside):
                return None
            with np.load(io.BytesIO(fs.cat_file(inside)), allow_pickle=False) as data:
                fitted, weight, bias = data["fitted"], data["weight"], data["bias"]
            if fitted.dtype != bool or weight.shape[:2] != bias.shape or len(fitted) != len(bias):
                raise ValueError(f"arrays {fitted.shape} {weight.shape} {bias.shape} disagree")
        except Exception as exc:  # torn or foreign: refit, never fail the night
            log.warning("base refit %s unreadable, refitting: %s", path, exc)
            return None
        return torch.from_numpy(fitted), torch.from_numpy(weight), torch.from_numpy(bias)

    def _prune(self, before: dt.date) -> None:
        """Delete the refits dated before ``before``."""
        assert self.url is not None
        fs, folder = filesystem(self.url)
        for path in fs.glob(f"{folder}/*.npz"):
            name = path.rsplit("/", 1)[-1]
            try:
                dated = dt.date.fromisoformat(name[:10])
            except ValueError:
                continue
            if dated < before:
                fs.rm(path)
