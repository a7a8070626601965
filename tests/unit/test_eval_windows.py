"""Rolling-origin windows: views over the series array, right values at the edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline_lib.evaluation.windows import origin_windows, rolling_origins


def test_rolling_origins_count_step_and_last() -> None:
    origins = rolling_origins(100, last_n=5, step=3, min_train=10, horizon=4)
    # every 3rd row from the first: 93 is the latest with its 4 targets observed (95 would be)
    assert origins.tolist() == [81, 84, 87, 90, 93]
    # the grid is fixed: a row more brings the origin 96 (81 leaves), the row after nothing new
    later = rolling_origins(101, last_n=5, step=3, min_train=10, horizon=4).tolist()
    assert later == [84, 87, 90, 93, 96]
    assert rolling_origins(102, last_n=5, step=3, min_train=10, horizon=4).tolist() == later
    assert rolling_origins(100, last_n=5, horizon=0)[-1] == 99
    assert len(rolling_origins(20, last_n=50, min_train=10, horizon=2)) == 20 - 2 - 9
    assert len(rolling_origins(5, last_n=3, min_train=10)) == 0


def test_windows_are_views_with_edge_values() -> None:
    values = np.arange(30.0)
    origins = rolling_origins(30, last_n=4, step=2, min_train=5, horizon=3)
    past, target = origin_windows(values, origins, lookback=5, horizon=3)
    assert np.shares_memory(past, values) and np.shares_memory(target, values)
    assert past.shape == (4, 5) and target.shape == (4, 3)
    assert past[-1].tolist() == [22, 23, 24, 25, 26]  # origin 26 is the last past value
    assert target[-1].tolist() == [27, 28, 29]  # the very last row of the series
    first, _ = origin_windows(values, np.array([4]), lookback=5, horizon=0)
    assert first[0].tolist() == [0, 1, 2, 3, 4]  # the very first row of the series


def test_two_dimensional_and_torch_inputs_are_views() -> None:
    values = np.arange(40.0).reshape(20, 2)
    past, target = origin_windows(values, np.array([5, 10]), lookback=3, horizon=2)
    assert np.shares_memory(past, values)
    assert past.shape == (2, 3, 2) and past[1, -1].tolist() == [20, 21]
    assert target[1, 0].tolist() == [22, 23]
    tensor = torch.from_numpy(values)
    t_past, t_target = origin_windows(tensor, np.array([5, 10]), lookback=3, horizon=2)
    assert t_past.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr()
    assert np.array_equal(t_past.numpy(), past) and np.array_equal(t_target.numpy(), target)


def test_uneven_origins_are_gathered_and_bounds_checked() -> None:
    values = np.arange(10.0)
    past, _ = origin_windows(values, np.array([2, 3, 7]), lookback=2, horizon=1)
    assert past.tolist() == [[1, 2], [2, 3], [6, 7]]
    with pytest.raises(ValueError, match="rows"):
        origin_windows(values, np.array([0]), lookback=2, horizon=0)
    with pytest.raises(ValueError, match="rows"):
        origin_windows(values, np.array([8]), lookback=1, horizon=2)
