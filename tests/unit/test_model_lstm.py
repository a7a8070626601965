"""The LSTM module: output shape and quantile ordering."""

from __future__ import annotations

import pytest
import torch

from pipeline_lib.forecasting.model.lstm import LSTMForecaster
from pipeline_lib.forecasting.model.steps import pinball_loss


@pytest.mark.parametrize(
    ("num_layers", "cell", "attention"),
    [
        (1, "lstm", False),
        (2, "lstm", False),
        (1, "gru", False),
        (2, "lstm", True),
        (1, "gru", True),
    ],
)
def test_output_shape_and_ordered_quantiles_for_random_inputs(
    num_layers: int, cell: str, attention: bool
) -> None:
    torch.manual_seed(0)
    model = LSTMForecaster(
        n_series=3,
        n_past_features=6,
        n_future_features=2,
        horizon=4,
        hidden_size=8,
        num_layers=num_layers,
        dropout=0.2,
        embedding_dim=2,
        cell=cell,
        attention=attention,
    )
    assert isinstance(model.encoder, torch.nn.GRU if cell == "gru" else torch.nn.LSTM)
    assert (model.attend is not None) == attention
    past = torch.randn(16, 12, 6) * 5  # [batch, lookback, n_past_features]
    future = torch.randn(16, 4, 2)  # [batch, horizon, n_future_features]
    series = torch.randint(0, 3, (16,))
    out = model(past, future, series)
    assert out.shape == (16, 4, 3)
    assert (out[..., 0] <= out[..., 1]).all() and (out[..., 1] <= out[..., 2]).all()


def test_quantiles_must_be_three_increasing_levels() -> None:
    with pytest.raises(ValueError):
        LSTMForecaster(1, 2, 1, 3, quantiles=(0.9, 0.5, 0.1))


def test_unknown_cell_is_refused() -> None:
    with pytest.raises(ValueError, match="cell must be one of"):
        LSTMForecaster(1, 2, 1, 3, cell="transformer")


def test_attention_weights_follow_the_encoder_outputs() -> None:
    """With attention, changing only the oldest step still changes the forecast."""
    torch.manual_seed(0)
    model = LSTMForecaster(1, 2, 1, 2, hidden_size=8, attention=True, dropout=0.0).eval()
    past = torch.randn(1, 20, 2)
    moved = past.clone()
    moved[0, 0] += 10
    future, series = torch.zeros(1, 2, 1), torch.zeros(1, dtype=torch.int64)
    with torch.no_grad():
        assert not torch.allclose(model(past, future, series), model(moved, future, series))


def test_pinball_loss_matches_hand_computation() -> None:
    # target 1; predictions 0 (q=.1), 1 (q=.5), 3 (q=.9):
    # .1 * (1 - 0) = .1; 0; (.9 - 1) * (1 - 3) = .2 -> mean .1
    pred = torch.tensor([[[0.0, 1.0, 3.0]]])
    loss = pinball_loss(pred, torch.tensor([[1.0]]), (0.1, 0.5, 0.9))
    assert loss.item() == pytest.approx(0.1)
