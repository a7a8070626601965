"""Rolling-origin windows as views over one array per series (no per-window copies).

An *origin* is the row index of the last observed step of a forecast (its forecast date). For
origin ``o``, a look-back of ``L`` and a horizon of ``H``:

- ``past``:   rows ``o - L + 1 .. o``   -> ``[N, L, ...]``
- ``target``: rows ``o + 1 .. o + H``   -> ``[N, H, ...]``

Steps are rows (observations), not calendar days. Both are views of the input array (numpy
``sliding_window_view`` or torch ``unfold``) when the origins are evenly spaced, as
:func:`rolling_origins` makes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def rolling_origins(
    n_dates: int, last_n: int, step: int = 1, min_train: int = 1, horizon: int = 1
) -> np.ndarray:
    """Origin indexes (ascending, int64) of the last ``last_n`` forecast dates of a series
    with ``n_dates`` rows, on the grid of every ``step``-th row from its first (0, step, ...).

    The last origin is the latest grid row whose ``horizon`` targets are all observed (at most
    ``n_dates - 1 - horizon``; ``horizon=0`` for forecasts without actuals). The grid is fixed
    to the series' first row, so the next night (a row more) has the same origins, and a new
    one every ``step`` rows: what a baseline forecast from them is kept
    (``pipeline_lib.forecasting.origin_cache``) instead of every origin moving by a row each night.
    Origins with fewer than ``min_train`` rows up to and including them are left out, so fewer than
    ``last_n`` come back on a short series (possibly none).
    """
    if last_n < 0 or step < 1 or min_train < 1 or horizon < 0:
        raise ValueError(
            f"need last_n >= 0, step >= 1, min_train >= 1, horizon >= 0; got {last_n=}, "
            f"{step=}, {min_train=}, {horizon=}"
        )
    last = n_dates - 1 - horizon
    last -= last % step  # on the grid
    origins = last - step * np.arange(last_n, dtype=np.int64)[::-1]
    return origins[origins >= min_train - 1]


def origin_windows(values: Any, origins: np.ndarray, lookback: int, horizon: int) -> tuple:
    """Look-back windows and ``horizon``-step targets of every origin: ``(past, target)``.

    ``values`` is a numpy array or a torch tensor of one series in date order, ``[T]`` or
    ``[T, F]``; ``past`` is ``[N, lookback, ...]`` and ``target`` ``[N, horizon, ...]`` (of the
    same type). Both share memory with ``values`` when ``origins`` are evenly spaced (one
    origin, or any arithmetic progression); other origin sets are gathered (a copy).
    Raises ``ValueError`` when a window would reach before the first or after the last row.
    """
    origins = np.asarray(origins, dtype=np.int64)
    if lookback < 1 or horizon < 0:
        raise ValueError(f"need lookback >= 1 and horizon >= 0, got {lookback=}, {horizon=}")
    n_rows, width = int(values.shape[0]), lookback + horizon
    if len(origins) and (origins.min() - lookback + 1 < 0 or origins.max() + horizon >= n_rows):
        raise ValueError(
            f"origins {origins.min()}..{origins.max()} need rows {origins.min() - lookback + 1}"
            f"..{origins.max() + horizon}, but the series has rows 0..{n_rows - 1}"
        )
    if hasattr(values, "unfold"):  # torch: [N, ..., W] -> [N, W, ...]
        windows = values.unfold(0, width, 1).movedim(-1, 1)
    else:
        windows = np.moveaxis(sliding_window_view(values, width, axis=0), -1, 1)
    starts = origins - lookback + 1  # window row of each origin
    if len(starts) == 0:
        rows = windows[0:0]
    elif len(starts) == 1 or _evenly_spaced(starts):
        stride = int(starts[1] - starts[0]) if len(starts) > 1 else 1
        rows = windows[int(starts[0]) : int(starts[-1]) + 1 : stride]  # basic slicing: a view
    else:  # uneven origins: gathered, a copy
        rows = windows[_index_like(values, starts)]
    return rows[:, :lookback], rows[:, lookback:]


def _evenly_spaced(starts: np.ndarray) -> bool:
    gaps = np.diff(starts)
    return bool(gaps[0] > 0 and np.all(gaps == gaps[0]))


def _index_like(values: Any, index: np.ndarray) -> Any:
    """``index`` as an index of ``values``' own kind (a tensor for a torch tensor)."""
    if hasattr(values, "unfold"):
        import torch  # only reached with a torch input, so torch is loaded already

        return torch.from_numpy(index)
    return index
