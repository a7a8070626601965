"""The global multi-horizon quantile recurrent forecaster (LSTM or GRU, optional attention)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_CELLS: dict[str, type[nn.Module]] = {"lstm": nn.LSTM, "gru": nn.GRU}


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

    ``forward`` returns [batch, horizon, Q]: the quantiles of the change of scaled y from the
    last observed step, in the order of ``quantiles``. Ordering is guaranteed by construction:
    the middle output is the median, and each quantile below (above) it is the next one's
    minus (plus) a softplus gap. With three quantiles: lower = median - softplus(a), upper =
    median + softplus(b).
    """

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
    ) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
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
        return torch.cat([median - below, median, median + above], dim=2)  # [batch, horizon, Q]
