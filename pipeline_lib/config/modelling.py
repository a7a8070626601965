"""How the model is built and trained: the recurrent model's hyper-parameters
(:class:`ModelConfig`) and its training and fine-tuning (:class:`TrainingConfig`); how the
models are scored and chosen is :mod:`pipeline_lib.config.contest`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator


class ModelConfig(BaseModel):
    """Hyper-parameters of the recurrent model (see pipeline_lib.forecasting.model.lstm for
    each)."""

    lookback: int = Field(default=60, ge=2)
    hidden_size: int = Field(default=32, ge=1)
    num_layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    embedding_dim: int = Field(default=4, ge=1)
    cell: Literal["lstm", "gru"] = Field(default="lstm", description="recurrent cell")
    attention: bool = Field(default=False, description="attention over the encoder outputs")
    base: Literal["none", "linear"] = Field(
        default="linear",
        description="'linear': the network corrects a per-series, per-horizon ridge regression "
        "on the origin's inputs and the known-future ones, fitted in closed form on the "
        "training windows (a hybrid, see pipeline_lib.forecasting.model.base); 'none': the "
        "network alone",
    )
    gate: bool = Field(
        default=True,
        description="with base = 'linear': scale the network's correction of the median, per "
        "series and horizon step, by the factor (0, 0.25, ..., 1) with the least absolute error "
        "on the validation windows",
    )
    base_refit_rows: int = Field(
        default=1820,
        ge=0,
        description="with base = 'linear': the newest rows of each series up to tonight the base "
        "is refitted on for tonight's forecast (0: every row), as the linear baseline's "
        "backtest.linear_fit_rows",
    )
    asinh_rows: int = Field(
        default=0,
        ge=0,
        description="0: the model reads each series' y on its standard scale; N (7 up to the "
        "lookback): each window's y is read as asinh((y - m) / s), m and s the median and MAD "
        "of its newest N past rows (spikes and negative prices weigh less; "
        "pipeline_lib.forecasting.model.window_set.local_scale)",
    )
    quantiles: list[float] = Field(
        default_factory=lambda: [0.1, 0.5, 0.9],
        description="levels the LSTM forecasts: an odd count (3, 5, ...) of increasing values "
        "in (0, 1); the middle one is the point forecast, the first and last the published "
        "interval (yhat_lower, yhat_upper)",
    )

    @field_validator("quantiles")
    @classmethod
    def _quantiles_ordered(cls, v: list[float]) -> list[float]:
        increasing = all(a < b for a, b in zip(v, v[1:], strict=False))
        if len(v) < 3 or len(v) % 2 == 0 or not increasing or not (0 < v[0] and v[-1] < 1):
            raise ValueError(
                "quantiles must be an odd count (3, 5, ...) of increasing values in (0, 1), "
                "e.g. [0.1, 0.5, 0.9] or [0.05, 0.25, 0.5, 0.75, 0.95]"
            )
        return v

    @model_validator(mode="after")
    def _base_lags(self) -> ModelConfig:
        if self.base == "linear" and self.lookback < 7:
            raise ValueError("model.base = 'linear' reads the lag 7: lookback must be at least 7")
        if self.asinh_rows and not 7 <= self.asinh_rows <= self.lookback:
            raise ValueError(
                f"model.asinh_rows must be 0 (off) or from 7 to the lookback ({self.lookback}): "
                f"the rows of a window that centre and scale its prices, got {self.asinh_rows}"
            )
        if 0 < self.base_refit_rows <= 2 * self.lookback:
            raise ValueError(
                f"model.base_refit_rows must be 0 (every row) or more than twice the lookback "
                f"({2 * self.lookback}): the base is refitted on the windows of those rows, "
                f"got {self.base_refit_rows}"
            )
        return self

    @property
    def gated(self) -> bool:
        """Whether the model has a gate: ``gate`` applies to a linear base only."""
        return self.gate and self.base != "none"

    @property
    def band(self) -> list[float]:
        """The published levels: (yhat_lower, yhat, yhat_upper), the outer and middle
        quantiles; what every baseline forecasts and what the metrics score."""
        q = self.quantiles
        return [q[0], q[len(q) // 2], q[-1]]


class TrainingConfig(BaseModel):
    """How models are trained, fine-tuned and when they are fully retrained."""

    seed: int = 42
    max_epochs: int = Field(default=30, ge=1)
    patience: int = Field(default=5, ge=1)
    batch_size: int = Field(default=128, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    val_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    train_window_days: int = Field(
        default=1095, ge=30, description="history used by a full training"
    )
    finetune_epochs: int = Field(default=5, ge=1)
    finetune_window_days: int = Field(default=180, ge=10)
    finetune_lr_factor: float = Field(default=0.2, gt=0, le=1)
    finetune_replay_fraction: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="older windows replayed in a fine-tune, as a share of the recent windows",
    )
    finetune_scalers: Literal["frozen", "refit"] = Field(
        default="frozen", description="keep the parent's scalers, or refit them on the new data"
    )
    retrain_every_days: int = Field(default=28, ge=1, description="full retraining cadence")
    num_threads: int = Field(default=2, ge=1)
