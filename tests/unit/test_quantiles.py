"""Any odd count of quantiles: ordered by construction, trained on all, the outer ones published."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.model.lstm import LSTMForecaster
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full

FIVE = [0.05, 0.25, 0.5, 0.75, 0.95]


def _inputs(batch: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    past = torch.randn(batch, 12, 6, generator=g) * 5
    future = torch.randn(batch, 4, 2, generator=g) * 5
    return past, future, torch.zeros(batch, dtype=torch.int64)


def test_any_odd_count_of_quantiles_is_ordered_by_construction() -> None:
    torch.manual_seed(1)
    model = LSTMForecaster(1, 6, 2, horizon=4, quantiles=FIVE, hidden_size=8)
    out = model(*_inputs())
    assert out.shape == (64, 4, 5)
    assert (out.diff(dim=2) > 0).all()  # strictly increasing along the quantiles


def test_three_quantiles_keep_the_median_plus_minus_softplus_form() -> None:
    torch.manual_seed(2)
    model = LSTMForecaster(1, 6, 2, horizon=4, quantiles=[0.1, 0.5, 0.9], hidden_size=8).eval()
    past, future, series = _inputs(8)
    out = model(past, future, series)
    # the head's raw outputs, as the module computes them
    raw = model.head(
        torch.cat(
            [
                model.encoder(
                    torch.cat([past, model.embedding(series).unsqueeze(1).expand(8, 12, 4)], 2)
                )[0][:, -1, :],
                model.embedding(series),
                future.reshape(8, -1),
            ],
            dim=1,
        )
    ).reshape(8, 4, 3)
    torch.testing.assert_close(out[..., 1], raw[..., 1])
    torch.testing.assert_close(out[..., 0], raw[..., 1] - F.softplus(raw[..., 0]))
    torch.testing.assert_close(out[..., 2], raw[..., 1] + F.softplus(raw[..., 2]))


@pytest.mark.parametrize("bad", [[0.1, 0.9], [0.1, 0.3, 0.7, 0.9], [0.5, 0.1, 0.9], [0, 0.5, 1]])
def test_quantiles_must_be_an_odd_increasing_count(bad: list[float]) -> None:
    with pytest.raises(ValidationError, match="odd count"):
        ModelConfig(quantiles=bad)
    assert ModelConfig(quantiles=FIVE).band == [0.05, 0.5, 0.95]


def test_a_five_quantile_model_trains_on_all_and_publishes_the_outer_band() -> None:
    features = random_walk_features(n_series=2, n_days=260, seed=3)
    model_cfg = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, quantiles=FIVE)
    train_cfg = TrainingConfig(max_epochs=2, patience=2, batch_size=64, train_window_days=400)
    as_of = features["date"].max().date()
    trained = train_full(features, model_cfg, train_cfg, 5, as_of)
    assert trained.quantiles == FIVE and trained.hyperparameters["quantiles"] == FIVE
    out = predict(trained, features, as_of, {})
    assert len(out) == 2 * 5
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    # a 90% band from the outer quantiles is wider than the 50% band of the inner ones would be
    width = (out["yhat_upper"] - out["yhat_lower"]).to_numpy()
    assert np.all(width > 0) and as_of > dt.date(2020, 1, 1)
