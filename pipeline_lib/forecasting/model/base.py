"""The closed-form fit of the LSTM's linear base (``model.base = "linear"``).

The hybrid model forecasts a base plus the network's correction (see
:class:`~pipeline_lib.forecasting.model.lstm.LSTMForecaster`). The base is the LEAR-style regression
of electricity price forecasting, on the model's own scaled inputs: per series and per horizon
step, a ridge regression of the scaled change ``y_{t+h} - y_t`` on
:func:`~pipeline_lib.forecasting.model.lstm.linear_base_inputs` (the origin's row, lags 1, 2 and 7,
the target's weekday, its known-future inputs and the leads of every target date: the day-ahead
covariates). Fitted on every window of the training run, validation windows included (a ridge
needs no early stopping; never the backtest's, whose targets lie after the model's target
end), with scikit-learn's ``RidgeCV`` choosing the penalty by efficient leave-one-out, then
folded into plain weights (standardisation included) and written into the module's buffers
before the network trains.

Tonight's forecast reads a base refitted up to tonight (:func:`refit_to`): the model's own base
stops at its target end, which lies ``backtest.last_n + horizon`` rows or more before the night
(those rows are its backtest), while the per-origin linear baseline is refitted on every row up
to each origin.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.forecasting.blas import blas_on_one_thread
from pipeline_lib.forecasting.model.lstm import LSTMForecaster, linear_base_inputs
from pipeline_lib.forecasting.model.refits import RefitStore, refit_key, with_base
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.model.window_set import WindowSet
from pipeline_lib.forecasting.model.windows import model_windows, training_rows

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)  # ridge penalties on standardised inputs
MIN_WINDOWS = 2  # a series' base is fitted on at least this many windows (else it is kept)


def ridge_loo(
    x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regressions on standardised inputs with an unpenalised intercept, the penalty of
    each chosen among ``alphas`` by its mean squared leave-one-out error (the first on a tie):
    what ``make_pipeline(StandardScaler(), RidgeCV(alphas)).fit(x[k], y[k])`` gives, for all
    ``k`` at once, about 7 times faster (one batched eigendecomposition of ``Z^T Z`` instead of
    a scikit-learn fit per horizon step: 14 fits of 520 x 30 in 6 ms instead of 42 ms, so about
    6 s instead of 42 s at 1,000 series).

    ``x``: [K, n, p], ``y``: [K, n]. Returns, on the original scale of ``x``, the weights
    [K, p], the intercepts [K] and the chosen penalties [K]. A constant input column gets a
    zero weight (StandardScaler's unit scale for it).
    The leave-one-out residual of row i is ``e_i / (1 - h_ii)``, with ``e`` the residuals and
    ``h_ii`` the leverages of the hat matrix ``1/n + Z (Z^T Z + alpha I)^-1 Z^T`` (``Z``: the
    centred, standardised ``x``, through the eigendecomposition of ``Z^T Z``; the ``1/n``: the
    intercept). ``Z`` itself is never formed: ``Z^T Z`` is the centred inputs' cross-product
    over the scales (whose diagonal gives the scales), ``Z V`` the centred inputs times ``V``
    over the scales, and every penalty's fit and leverages come from one product each (the
    rows are the large dimension: each pass over them counts).
    """
    n = x.shape[1]
    mean = x.mean(axis=1, keepdims=True)  # [K, 1, p]
    centred = x - mean  # [K, n, p]
    cross = np.matmul(centred.transpose(0, 2, 1), centred)  # [K, p, p]
    scale = np.sqrt(np.diagonal(cross, axis1=1, axis2=2) / n)[:, None, :]  # x.std(axis=1)
    eps = np.finfo(np.float64).eps
    scale = np.where(scale < 10 * eps * np.maximum(np.abs(mean), 1.0), 1.0, scale)
    gram = cross / (scale.transpose(0, 2, 1) * scale)  # Z^T Z
    y_mean = y.mean(axis=1, keepdims=True)  # [K, 1]
    yc = y - y_mean
    eig, v = np.linalg.eigh(gram)  # Z^T Z = V diag(s^2) V^T
    eig = np.clip(eig, 0.0, None)
    zv = np.matmul(centred, v / scale.transpose(0, 2, 1))  # [K, n, p] = Z V = U diag(s)
    zty = np.matmul(yc[:, None, :], zv)[:, 0, :]  # [K, p] = diag(s) U^T y
    penalties = np.asarray(alphas, dtype=np.float64)
    inv = 1.0 / (eig[:, :, None] + penalties)  # [K, p, A]
    fitted = np.matmul(zv, inv * zty[:, :, None])  # [K, n, A]
    leverage = 1.0 / n + np.matmul(zv**2, inv)  # [K, n, A]
    score = (((yc[:, :, None] - fitted) / (1.0 - leverage)) ** 2).mean(axis=1)  # [K, A]
    score = np.where(np.isnan(score), np.inf, score)  # an undefined score never wins
    best = score.argmin(axis=1)  # the first of equal scores
    rows = np.arange(len(x))
    found = np.isfinite(score[rows, best])  # else no penalty: a zero line through the mean
    chosen = inv[rows, :, best] * zty * found[:, None]  # [K, p]
    coef = np.matmul(v, chosen[:, :, None])[:, :, 0]  # [K, p]
    weight = coef / scale[:, 0, :]
    intercept = y_mean[:, 0] - np.einsum("kp,kp->k", weight, mean[:, 0, :])
    return weight, intercept, np.where(found, penalties[best], 0.0)


def fit_linear_base(
    module: LSTMForecaster,
    windows: WindowSet,
    alphas: tuple[float, ...] = ALPHAS,
    keep: bool = False,
) -> dict[str, Any]:
    """Fit ``module``'s linear base on ``windows`` in place (the caller passes windows whose
    targets end by the model's target end).

    One standardised ridge regression per series and horizon step on that series' windows,
    its penalty chosen by leave-one-out error (:func:`ridge_loo`, scikit-learn's
    ``StandardScaler`` + ``RidgeCV`` computed for all horizon steps at once); the fitted line
    is stored as ``weight = coef / scale`` and ``bias = intercept - weight . mean``, so the
    module applies it to unscaled inputs. A series without at least two windows
    keeps a zero base (the network alone), or with ``keep`` the base it has. Deterministic: no
    randomness is involved.
    Returns a summary for the training metrics: the series fitted, their windows and the
    median chosen penalty. Runs on one BLAS thread (small matrices: see
    :func:`~pipeline_lib.forecasting.model.threads.blas_on_one_thread`).
    """
    if module.base != "linear":
        raise ValueError(f"the module has no linear base (base = {module.base!r})")
    blas_on_one_thread()
    if keep:  # copies: the buffers are written once, at the end
        weight = module.base_weight.to(torch.float64, copy=True)  # [S, H, width]
        bias = module.base_bias.to(torch.float64, copy=True)  # [S, H]
    else:
        weight = torch.zeros_like(module.base_weight, dtype=torch.float64)
        bias = torch.zeros_like(module.base_bias, dtype=torch.float64)
    chosen: list[float] = []
    fitted_series, n_windows = 0, 0
    index = windows.series_index.numpy()
    for s in np.unique(index):
        rows = torch.from_numpy(np.flatnonzero(index == s))
        if len(rows) < MIN_WINDOWS:
            continue
        fitted_series, n_windows = fitted_series + 1, n_windows + len(rows)
        with torch.no_grad():
            past, future, target_t = windows.batch(rows)
            x = linear_base_inputs(past, future, module.n_calendar)  # [n, H, width]
        x64 = x.numpy().astype(np.float64).transpose(1, 0, 2)  # [H, n, width]
        target = target_t.numpy().astype(np.float64).T  # [H, n]
        w, b, alpha = ridge_loo(x64, target, alphas)
        weight[s] = torch.from_numpy(w)
        bias[s] = torch.from_numpy(b)
        chosen += alpha.tolist()
    module.base_weight.copy_(weight.to(module.base_weight.dtype))
    module.base_bias.copy_(bias.to(module.base_bias.dtype))
    return {
        "kind": "linear",
        "series": fitted_series,
        "windows": n_windows,
        "median_alpha": float(np.median(chosen)) if chosen else None,
    }


GATES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the factors a gate chooses among


@torch.no_grad()
def fit_gate(module: LSTMForecaster, val: WindowSet, batch_size: int = 4096) -> dict[str, Any]:
    """Choose, per series and horizon step, the factor of :data:`GATES` that scales the
    network's correction of the median with the least absolute error on the validation
    windows ``val`` (the larger factor on a tie), and write it into ``module.gate_weight``.

    Trained on the residuals of a base fitted on its own training windows, the network's
    correction of the median often adds error where a fresh base is hard to beat (walk-forward
    on the electricity zones, h=1: 1.6% behind the per-origin linear model without the gate,
    2.6% ahead with it; README). A series without validation windows keeps the whole
    correction (1). Returns a summary for the training metrics.
    """
    module.gate_weight.fill_(1.0)
    module.eval()
    n_series, horizon = module.gate_weight.shape
    errors = torch.zeros(len(GATES), n_series, horizon, dtype=torch.float64)
    mid = len(module.quantiles) // 2
    for start in range(0, len(val), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(val)))
        past, future, target = val.batch(idx)
        series = val.series_index[idx]
        base = module.base_forecast(past, future, series)
        assert base is not None  # a gate comes with a linear base
        correction = module(past, future, series)[..., mid] - base  # [n, H]
        for k, factor in enumerate(GATES):
            error = (target - base - factor * correction).abs().to(torch.float64)  # [n, H]
            errors[k].index_add_(0, series, error)
    last_best = torch.flip(errors, [0]).argmin(0)  # [n_series, H]; a tie: the larger factor
    chosen = torch.tensor(GATES, dtype=module.gate_weight.dtype)[len(GATES) - 1 - last_best]
    seen = torch.zeros(n_series, dtype=torch.bool)
    seen[val.series_index.unique()] = True
    module.gate_weight.copy_(torch.where(seen.unsqueeze(1), chosen, torch.ones_like(chosen)))
    factors = module.gate_weight[seen]
    return {
        "factors": list(GATES),
        "mean": float(factors.mean()) if seen.any() else 1.0,
        "h1_mean": float(factors[:, 0].mean()) if seen.any() else 1.0,
    }


def refit_to(
    trained: TrainedModel,
    features: pd.DataFrame,
    as_of: dt.date,
    series: Collection[str] | None = None,
    rows: int | None = None,
    at_end: bool = False,
    shared: RefitStore | None = None,
) -> TrainedModel:
    """``trained`` with its linear base refitted on the windows whose targets end by ``as_of``
    (a copy; ``trained`` is left as it is), for the forecast made at ``as_of``. ``series``:
    only these series' bases are refitted (those whose forecast is wanted; a series' base
    reads that series alone), the others keep the model's; default every series.

    The windows: the model's series, scaled by the model's scalers, from the newest ``rows``
    rows of each series up to ``as_of`` (0: every row; ``model.base_refit_rows``, as the
    linear baseline's fit window), or with ``rows`` None from the ``train_window_days`` of
    its training options. On the electricity zones the longer window of the linear baseline
    (1,820 rows, every row of the sample) gave the hybrid 2% less error at h=1 than its
    three-year training window (README). Only the base changes: the
    network's weights, the scalers and the version stay the model's, so the backtest that
    chose the model scored its own base on origins after its target end (out of sample), and
    tonight's forecast uses every row before tonight, as the linear baseline does. A model
    without a linear base, or an ``as_of`` before its target end, is returned as it is, and so
    is one at its target end unless ``at_end`` (the backtest's refit at its hold-out start,
    where the training's targets stop: the same targets, the base fitted as tonight's is).
    Deterministic (closed form).

    With ``asinh_rows`` (``model.asinh_rows``) the base is the mean of two ridge fits on the
    same windows: one with each window's prices on its own asinh scale (as the network reads
    them), one with every window's prices on tonight's scale (the median and MAD of the
    newest ``asinh_rows`` rows, as the linear baseline reads its history,
    :meth:`~pipeline_lib.forecasting.model.window_set.WindowSet.on_newest_scale`). Tonight's window
    reads both the same way, so the mean of the two lines is one line. Averaging forecasts over
    variance-stabilising transforms is the robust choice of electricity price forecasting
    (Uniejewski, Weron and Ziel 2018); on the electricity zones' 51 nights the base alone at
    h=1 read a mean MAE ratio to the linear baseline of 1.067 on its own scale, 1.008 on
    tonight's and 0.989 for the mean of both (ahead of the linear baseline in 4 zones, 2 and
    1 for either fit alone; README).

    ``shared``: the refits kept (:class:`~pipeline_lib.forecasting.model.refits.RefitStore`; None:
    none). The ridge reads the windows, never the network's weights, so a model whose windows would
    be built from the same rows and inputs as a kept refit's (another model with the same scalers,
    inputs and architecture: the champion and tonight's fine-tune of it; or the same model on a
    later night, the same rows read) takes that refit's base for the series it fitted, bit for
    bit what its own fit gives, and keeps its own for the others, as its own fit would.
    """
    as_of_ts, end = pd.Timestamp(as_of), pd.Timestamp(trained.target_end)
    if trained.module.base != "linear" or as_of_ts < end or (as_of_ts == end and not at_end):
        return trained
    ids = trained.series_ids if series is None else [s for s in trained.series_ids if s in series]
    if not ids:
        return trained
    if rows is None:
        days = int(trained.training_config.get("train_window_days", 0)) or None
        first = (
            pd.Timestamp.min if days is None else pd.Timestamp(as_of) - pd.Timedelta(days=days - 1)
        )
        frame = training_rows(features, first, as_of, series_ids=ids)
    else:
        frame = training_rows(features, pd.Timestamp.min, as_of, series_ids=ids)
        if rows:
            frame = frame.groupby(schema.SERIES_ID, sort=False).tail(rows)
    key = "" if shared is None else refit_key(trained, as_of, ids, rows, frame)
    if shared is not None:
        found, refit = shared.get(key)
        if found:
            return with_base(trained, refit)
    windows = model_windows(trained, frame, as_of)
    if len(windows) == 0:
        if shared is not None:
            shared.put(key, None)
        return trained
    module = copy.deepcopy(trained.module)
    fit_linear_base(module, windows, keep=True)
    if trained.asinh_rows:  # and on tonight's scale: the mean of the two lines
        own = module.base_weight.clone(), module.base_bias.clone()
        fit_linear_base(module, windows.on_newest_scale(), keep=True)
        module.base_weight.add_(own[0]).mul_(0.5)
        module.base_bias.add_(own[1]).mul_(0.5)
    if shared is not None:  # with the series fit_linear_base fitted
        counts = torch.bincount(windows.series_index, minlength=module.base_bias.shape[0])
        fitted = counts >= MIN_WINDOWS
        shared.put(key, (fitted, module.base_weight.clone(), module.base_bias.clone()))
    return dataclasses.replace(trained, module=module)
