"""The global multi-horizon quantile recurrent forecaster (LSTM or GRU, optional attention)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_CELLS: dict[str, type[nn.Module]] = {"lstm": nn.LSTM, "gru": nn.GRU}
BASES = ("none", "linear")
BASE_LAGS = (1, 6)  # the differences y_t - y_{t-k}: with y_t itself, the lags 1, 2 and 7


def base_width(n_past_features: int, n_future_features: int, n_calendar: int, horizon: int) -> int:
    """Inputs per target step of the linear base (see :func:`linear_base_inputs`)."""
    n_covariates = (n_future_features - n_calendar) // 2
    return n_past_features + len(BASE_LAGS) + 7 + n_future_features + horizon * n_covariates


def linear_base_inputs(past: torch.Tensor, future: torch.Tensor, n_calendar: int) -> torch.Tensor:
    """The linear base's inputs per target step: [batch, H, base_width].

    For each window (origin ``t``): every past column of the origin's row (scaled ``y_t``, the
    past covariates, the future covariates' own-date values, the origin's calendar), the
    differences ``y_t - y_{t-1}`` and ``y_t - y_{t-6}`` (lags 1, 2 and 7, as the LEAR model of
    electricity price forecasting), then per target step ``t + h`` the seven weekday dummies of
    the target date and its known-future inputs (its calendar, each future covariate's lead and
    its mask), and last every step's future covariate values (the leads of all target dates,
    as LEAR's regression of each hour sees the day-ahead forecasts of every hour; 0 beyond
    ``known_ahead``). ``future`` holds the ``n_calendar`` calendar columns first, ``dow_sin``
    and ``dow_cos`` leading (``schema.CALENDAR_FEATURES``): the target's weekday is read there.
    """
    batch, _, _ = past.shape
    horizon = future.shape[1]
    n_covariates = (future.shape[2] - n_calendar) // 2
    y = past[:, :, 0]  # [batch, lookback]
    diffs = torch.stack([y[:, -1] - y[:, -1 - k] for k in BASE_LAGS], dim=1)  # [batch, 2]
    leads = future[:, :, n_calendar : n_calendar + n_covariates].reshape(batch, -1)  # [batch, H C]
    origin = torch.cat([past[:, -1, :], diffs], dim=1)  # [batch, F + 2]
    angle = torch.atan2(future[..., 0], future[..., 1])  # [batch, H], 2 pi weekday / 7
    weekday = torch.remainder(torch.round(angle * 7 / (2 * math.pi)), 7).long()  # [batch, H]
    dummies = F.one_hot(weekday, 7).to(past.dtype)  # [batch, H, 7]
    steps = origin.unsqueeze(1).expand(batch, horizon, origin.shape[1])  # [batch, H, F + 2]
    every = leads.unsqueeze(1).expand(batch, horizon, leads.shape[1])  # [batch, H, H C]
    return torch.cat([steps, dummies, future, every], dim=2)  # [batch, H, base_width]


class LSTMForecaster(nn.Module):
    """A global LSTM over many series that forecasts Q quantiles for each of H days ahead.

    Args:
        n_series: number of series; each gets a learned embedding (index order is the model's
            series id list).
        n_past_features: input columns per past step (scaled y, past covariates, calendar).
        n_future_features: known-future inputs given for each of the H target steps (the
            calendar columns of the target date, then each future covariate's value and its
            availability mask); flattened into the head's input.
        horizon: H, the number of steps ahead forecast at once (multi-horizon head).
        quantiles: the quantile levels, an odd count in increasing order, e.g.
            ``(0.1, 0.5, 0.9)``; the middle one is the point forecast. Used by the loss, stored
            here so a checkpoint is self-describing.
        hidden_size: width of the LSTM state and of the head's hidden layer.
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers (only when ``num_layers > 1``) and in the head.
        embedding_dim: size of the series embedding, concatenated to every step's inputs and
            to the head's input.
        cell: ``"lstm"`` (default) or ``"gru"``.
        attention: add a scaled dot-product attention over the encoder's outputs, queried by
            the last step's output; its context vector joins the head's input.
        base: ``"none"``, or ``"linear"``: a per-series, per-horizon linear regression on
            :func:`linear_base_inputs` whose forecast the network corrects (a hybrid, as the
            exponential smoothing under ES-RNN's LSTM): the quantiles are the base's forecast
            plus the network's. Its weights are buffers fitted in closed form before training
            (:func:`pipeline_lib.forecasting.model.base.fit_linear_base`), never by gradient
            descent, and saved with the weights.
        n_calendar_features: the calendar columns at the head of each known-future step (the
            rest are the future covariates' values and masks); read by the linear base.
        gate: with a linear base, a buffer ``gate_weight`` [n_series, horizon] (ones) scales
            the network's correction of the median (the quantiles move with it, their gaps
            kept); chosen after training on the validation windows
            (:func:`pipeline_lib.forecasting.model.base.fit_gate`), saved with the weights.

    ``forward`` returns [batch, horizon, Q]: the quantiles of the change of scaled y from the
    last observed step (with a base: the base's forecast of it plus the network's correction),
    in the order of ``quantiles``. Ordering is guaranteed by construction: the middle output is
    the median, and each quantile below (above) it is the next one's minus (plus) a softplus
    gap. With three quantiles: lower = median - softplus(a), upper =
    median + softplus(b).
    """

    # The linear base's buffers (registered only with base="linear"), typed for the checker:
    # nn.Module's __getattr__ returns Tensor | Module.
    base_weight: torch.Tensor  # [n_series, horizon, width]
    base_bias: torch.Tensor  # [n_series, horizon]
    gate_weight: torch.Tensor  # [n_series, horizon], with gate=True

    def __init__(
        self,
        n_series: int,
        n_past_features: int,
        n_future_features: int,
        horizon: int,
        quantiles: tuple[float, ...] | list[float] = (0.1, 0.5, 0.9),
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.1,
        embedding_dim: int = 4,
        cell: str = "lstm",
        attention: bool = False,
        base: str = "none",
        n_calendar_features: int = 4,
        gate: bool = False,
    ) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        if base not in BASES:
            raise ValueError(f"base must be one of {list(BASES)}, got {base!r}")
        q = [float(x) for x in quantiles]
        increasing = all(a < b for a, b in zip(q, q[1:], strict=False))
        if len(q) < 3 or len(q) % 2 == 0 or not increasing or not (0 < q[0] and q[-1] < 1):
            raise ValueError(f"quantiles must be an odd count of increasing levels in (0, 1): {q}")
        self.horizon = horizon
        self.quantiles = tuple(float(q) for q in quantiles)
        self.embedding = nn.Embedding(n_series, embedding_dim)
        self.cell, self.attention = cell, attention
        self.encoder = _CELLS[cell](
            input_size=n_past_features + embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.attend = nn.Linear(hidden_size, hidden_size, bias=False) if attention else None
        context = hidden_size if attention else 0
        head_in = hidden_size + context + embedding_dim + horizon * n_future_features
        self.head = nn.Sequential(
            nn.Linear(head_in, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, horizon * len(q)),
        )
        self.base, self.n_calendar = base, n_calendar_features
        if base == "linear":
            width = base_width(n_past_features, n_future_features, n_calendar_features, horizon)
            self.register_buffer("base_weight", torch.zeros(n_series, horizon, width))
            self.register_buffer("base_bias", torch.zeros(n_series, horizon))
        self.gate = gate and base == "linear"
        if self.gate:
            self.register_buffer("gate_weight", torch.ones(n_series, horizon))

    def base_forecast(
        self, past: torch.Tensor, future: torch.Tensor, series: torch.Tensor
    ) -> torch.Tensor | None:
        """The linear base's forecast of the change [batch, horizon], or None without one."""
        if self.base != "linear":
            return None
        x = linear_base_inputs(past, future, self.n_calendar)  # [batch, H, width]
        weight = self.base_weight[series]  # [batch, H, width]
        return (x * weight).sum(-1) + self.base_bias[series]  # [batch, H]

    def forward(
        self, past: torch.Tensor, future: torch.Tensor, series: torch.Tensor
    ) -> torch.Tensor:
        """past [batch, lookback, n_past_features], future [batch, horizon, n_future_features],
        series [batch] (int64 embedding index) -> quantiles [batch, horizon, Q]."""
        batch, lookback, _ = past.shape
        emb = self.embedding(series)  # [batch, embedding_dim]
        steps = emb.unsqueeze(1).expand(batch, lookback, emb.shape[1])  # [batch, lookback, emb]
        encoded, _ = self.encoder(torch.cat([past, steps], dim=2))  # [batch, lookback, hidden]
        last = encoded[:, -1, :]  # [batch, hidden]
        parts = [last]
        if self.attend is not None:
            query = self.attend(last).unsqueeze(1)  # [batch, 1, hidden]
            scores = (query * encoded).sum(-1) / encoded.shape[-1] ** 0.5  # [batch, lookback]
            weights = torch.softmax(scores, dim=1).unsqueeze(2)  # [batch, lookback, 1]
            parts.append((weights * encoded).sum(1))  # context [batch, hidden]
        head_in = torch.cat([*parts, emb, future.reshape(batch, -1)], dim=1)  # [batch, head_in]
        n_q = len(self.quantiles)
        raw = self.head(head_in).reshape(batch, self.horizon, n_q)  # [batch, horizon, Q]
        mid = n_q // 2
        median = raw[..., mid : mid + 1]  # [batch, horizon, 1]
        steps = F.softplus(raw)  # [batch, horizon, Q], positive gaps between quantiles
        below = steps[..., :mid].flip(-1).cumsum(-1).flip(-1)  # [batch, horizon, Q // 2]
        above = steps[..., mid + 1 :].cumsum(-1)  # [batch, horizon, Q // 2]
        if self.gate:  # the correction of the median scaled, the gaps between quantiles kept
            median = median * self.gate_weight[series].unsqueeze(-1)
        out = torch.cat([median - below, median, median + above], dim=2)  # [batch, horizon, Q]
        base = self.base_forecast(past, future, series)
        return out if base is None else out + base.unsqueeze(-1)
