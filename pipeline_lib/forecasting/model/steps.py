"""Training in small named steps, shared by the full training
(:mod:`pipeline_lib.forecasting.model.train`) and the fine-tune
(:mod:`pipeline_lib.forecasting.model.finetune`): seeding, the loss, one step, one evaluation,
the optimizer and its saved state.

Every random choice is seeded by ``TrainingConfig.seed``, so the same inputs give bit-identical
weights.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import torch

from pipeline_lib.config import TrainingConfig
from pipeline_lib.forecasting.model.lstm import LSTMForecaster
from pipeline_lib.forecasting.model.window_set import WindowSet

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
OptimizerState = dict[str, Any]  # a torch ``Optimizer.state_dict()``


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


def batch_of(w: WindowSet, idx: torch.Tensor) -> Batch:
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
        past, future, series, target = batch_of(windows, idx)
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
