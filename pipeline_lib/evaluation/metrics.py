"""Forecast accuracy: point, quantile and interval metrics (the scorer of forecast frames is
:mod:`pipeline_lib.evaluation.scoring`).

Point metrics take actuals and forecasts as arrays. MAE, RMSE and the pinball loss are
scikit-learn's; :func:`~pipeline_lib.evaluation.scoring.score_forecasts` computes the same means
for thousands of groups at once from the rows' terms. MASE divides the MAE by the in-sample MAE of
the seasonal-naive forecast of period ``season`` on the training history (``season=1``: the
naive forecast). sMAPE is on the 0..200 scale, ``200 * mean(|y - yhat| / (|y| + |yhat|))``, a
term with ``y == yhat == 0`` counting 0 (a perfect forecast).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_pinball_loss, root_mean_squared_error

from pipeline_lib import schema

MODEL = "model"  # optional forecasts column: which model produced the row
ALL_HORIZONS = "ALL"  # the horizon label of a row scored over every horizon
DEFAULT_MODEL = "forecast"  # the model label when the forecasts carry no model column
ACTUAL_COLUMNS = [schema.SERIES_ID, schema.DATE, schema.Y]


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(mean_absolute_error(y, yhat))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(root_mean_squared_error(y, yhat))


def naive_scale(history: np.ndarray, season: int = 1) -> float:
    """In-sample MAE of the seasonal-naive forecast on ``history`` (in date order): the mean of
    ``|y[t] - y[t - season]|``. NaN when the history has ``season`` values or fewer."""
    h = np.asarray(history, dtype=np.float64)
    if season < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    if len(h) <= season:
        return float("nan")
    return float(np.mean(np.abs(h[season:] - h[:-season])))


def mase(y: np.ndarray, yhat: np.ndarray, history: np.ndarray, season: int = 1) -> float:
    """MAE of the forecast over :func:`naive_scale` of the training history. Infinite when the
    history is constant and the forecast has an error (NaN when it has none)."""
    return _ratio(mae(y, yhat), naive_scale(history, season))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE on 0..200; a term with ``y == yhat == 0`` counts 0."""
    y, yhat = np.asarray(y, np.float64), np.asarray(yhat, np.float64)
    num, den = np.abs(y - yhat), np.abs(y) + np.abs(yhat)
    terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(200.0 * np.mean(terms))


def pinball(y: np.ndarray, yhat_q: np.ndarray, quantile: float) -> float:
    """Pinball (quantile) loss of the forecast ``yhat_q`` of quantile ``quantile``."""
    return float(mean_pinball_loss(y, yhat_q, alpha=quantile))


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside ``[lower, upper]`` (bounds included)."""
    y = np.asarray(y, np.float64)
    return float(np.mean((y >= np.asarray(lower)) & (y <= np.asarray(upper))))


def width(lower: np.ndarray, upper: np.ndarray) -> float:
    """Mean width of the intervals ``[lower, upper]``."""
    return float(np.mean(np.asarray(upper, np.float64) - np.asarray(lower, np.float64)))


def pinball_column(quantile: float) -> str:
    """Name of the pinball-loss column of ``quantile`` in :func:`score_forecasts`' output:
    the level in thousandths, ``pinball_q100`` for 0.1, ``pinball_q025`` for 0.025 (a plain
    SQL identifier)."""
    return f"pinball_q{round(quantile * 1000):03d}"


def finite_or_none(x: object) -> float | None:
    """``x`` as a float, or None when it is NaN or infinite (for JSON records, which have no
    NaN)."""
    value = float(x)  # type: ignore[arg-type]
    return value if np.isfinite(value) else None


def _ratio(num: float, den: float) -> float:
    if np.isnan(den) or np.isnan(num):
        return float("nan")
    if den == 0:
        return float("nan") if num == 0 else float("inf")
    return num / den
