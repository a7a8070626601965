"""The trained-model record: weights, scalers and everything needed to rebuild and audit it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.model.lstm import LSTMForecaster
from pipeline_lib.forecasting.model.scaling import SeriesScalers

# Constructor arguments of LSTMForecaster kept in ``TrainedModel.hyperparameters``.
MODULE_ARGS = (
    "n_series",
    "n_past_features",
    "n_future_features",
    "horizon",
    "quantiles",
    "hidden_size",
    "num_layers",
    "dropout",
    "embedding_dim",
    "cell",
    "attention",
    "base",
    "n_calendar_features",
    "gate",
)
# Defaults of arguments added later, for checkpoints saved before them.
MODULE_DEFAULTS = {
    "cell": "lstm",
    "attention": False,
    "base": "none",
    "gate": False,
    "asinh_rows": 0,
}
# The record keeps ``n_calendar_features`` (the calendar columns, as before covariates) and adds
# ``n_future_features`` only when future covariates widen the known-future inputs, so records
# (and versions) of models without covariates are unchanged; absent, it is the calendar count.


@dataclass
class TrainedModel:
    """A fitted LSTM with its scalers and provenance.

    ``series_ids`` is the embedding index order. ``feature_names`` are the scaled input columns
    (``y``, then ``feature_set.past_columns``) and ``calendar_features`` the known-future columns
    appended after them. ``feature_set`` names the covariates (empty for models saved before
    them); the scalers cover ``feature_names`` and the lead columns (:attr:`scaled_columns`).
    ``hyperparameters`` holds the module's constructor arguments plus ``lookback``.

    ``optimizer_state`` is the ``state_dict()`` of the Adam optimizer at the best epoch (the
    epoch whose weights ``module`` holds), so a fine-tune can continue from the same moment
    estimates and step counts. ``None`` for models saved before it was kept. It is training
    state, not part of the model's identity: it is left out of :attr:`version`.
    """

    module: LSTMForecaster
    scalers: SeriesScalers
    series_ids: list[str]
    feature_names: list[str]
    calendar_features: list[str]
    hyperparameters: dict[str, Any]
    horizon: int
    quantiles: list[float]
    train_start: dt.date
    train_end: dt.date
    kind: Literal["full", "finetune"]
    parent_version: str | None
    metrics: dict[str, Any]
    data_fingerprint: str
    training_config: dict[str, Any] = field(default_factory=dict)
    fit_end: dt.date | None = None
    optimizer_state: dict[str, Any] | None = None
    feature_set: FeatureSet = field(default_factory=FeatureSet)

    @property
    def scaled_columns(self) -> list[str]:
        """The columns the scalers cover: ``feature_names`` then the lead columns."""
        return [*self.feature_names, *self.feature_set.lead_columns]

    @property
    def target_end(self) -> dt.date:
        """The last date a training target may have: ``fit_end``, else ``train_end``.

        Rows after it (up to ``train_end``) were inputs of the model's validation and backtest
        windows only; its backtest origins start there, so they are out of sample."""
        return self.fit_end or self.train_end

    @property
    def lookback(self) -> int:
        return int(self.hyperparameters["lookback"])

    @property
    def asinh_rows(self) -> int:
        """The past rows that centre and scale each window's ``y`` on an asinh scale (0: the
        standard scale alone; ``model.asinh_rows``)."""
        return int(self.hyperparameters.get("asinh_rows", 0))

    @property
    def version(self) -> str:
        """Deterministic from content: ``{train_end:%Y%m%d}-{kind}-{hash[:10]}``.

        The hash covers the data fingerprint, the hyper-parameters, the training options, the
        parent version, the target cut-off and the feature set (only when it has covariates, so
        versions of models without them are as before), so retraining on the same data with the same
        settings gives the same version, and anything that changes the model gives another.
        The optimizer state is not hashed: it follows from the inputs above.
        """
        record = {
            "fingerprint": self.data_fingerprint,
            "hyperparameters": self.hyperparameters,
            "training": self.training_config,
            "parent": self.parent_version,
            "train_start": self.train_start.isoformat(),
        }
        if self.fit_end is not None:
            record["fit_end"] = self.fit_end.isoformat()
        if self.feature_set != FeatureSet():
            record["feature_set"] = self.feature_set.to_dict()
        content = json.dumps(record, sort_keys=True)
        digest = hashlib.sha256(content.encode()).hexdigest()
        return f"{self.train_end:%Y%m%d}-{self.kind}-{digest[:10]}"


def hyperparameters(
    model_cfg: ModelConfig,
    n_series: int,
    n_scaled: int,
    n_calendar: int,
    horizon: int,
    n_future_covariates: int = 0,
) -> dict[str, Any]:
    """The hyper-parameter record of a new model: module arguments plus ``lookback``.

    Each past step's inputs are the ``n_scaled`` scaled columns followed by the calendar
    columns; each target step's are the calendar columns, then a value and a mask per future
    covariate (``n_future_features``, recorded only when there are future covariates).
    """
    future = {}
    if n_future_covariates:
        future["n_future_features"] = n_calendar + 2 * n_future_covariates
    return {
        "n_series": n_series,
        "n_past_features": n_scaled + n_calendar,
        "n_calendar_features": n_calendar,
        **future,
        "horizon": horizon,
        "quantiles": list(model_cfg.quantiles),
        "hidden_size": model_cfg.hidden_size,
        "num_layers": model_cfg.num_layers,
        "dropout": model_cfg.dropout,
        "embedding_dim": model_cfg.embedding_dim,
        "cell": model_cfg.cell,
        "attention": model_cfg.attention,
        **({"base": model_cfg.base} if model_cfg.base != "none" else {}),
        **({"gate": True} if model_cfg.gated else {}),
        **({"asinh_rows": model_cfg.asinh_rows} if model_cfg.asinh_rows else {}),
        "lookback": model_cfg.lookback,
    }


def build_module(hyperparameters: dict[str, Any]) -> LSTMForecaster:
    """A fresh (untrained) module from a hyper-parameter record (any version of it)."""
    record = {**MODULE_DEFAULTS, **hyperparameters}
    record.setdefault("n_future_features", record["n_calendar_features"])
    return LSTMForecaster(**{k: record[k] for k in MODULE_ARGS})


def data_fingerprint(features: pd.DataFrame, columns: list[str]) -> str:
    """sha256 of the rows' series id, date and ``columns`` values, in (series, date) order.

    Independent of row order, index, date resolution and NaN bit patterns, so it is stable
    across runs and machines.
    """
    frame = features.sort_values([schema.SERIES_ID, schema.DATE], kind="stable")
    h = hashlib.sha256()
    h.update("\x1f".join(frame[schema.SERIES_ID].astype(str)).encode())
    dates = frame[schema.DATE].to_numpy().astype("datetime64[ns]").astype("<i8")
    h.update(dates.tobytes())
    for column in columns:
        values = frame[column].to_numpy(dtype=np.float64)
        values = np.where(np.isnan(values), np.nan, values).astype("<f8")
        h.update(column.encode() + b"\x00" + values.tobytes())
    return h.hexdigest()
