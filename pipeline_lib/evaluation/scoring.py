"""Scoring forecast frames against actuals, thousands of groups at once: the metrics of
:mod:`pipeline_lib.evaluation.metrics` per model, series and horizon (:func:`score_forecasts`)
from each row's terms (:func:`score_rows`), in one grouped aggregation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.evaluation.metrics import (
    ACTUAL_COLUMNS,
    ALL_HORIZONS,
    DEFAULT_MODEL,
    MODEL,
    naive_scale,
    pinball_column,
)
from pipeline_lib.schema import FORECAST_COLUMNS


def score_forecasts(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    history: pd.DataFrame,
    season: int = 1,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
) -> pd.DataFrame:
    """Score forecasts against the actuals of their target dates.

    ``forecasts`` has the production forecast columns (``FORECAST_COLUMNS``) and optionally
    ``model``; ``actuals`` and ``history`` have ``series_id, date, y``. ``quantiles`` are the
    quantile levels of ``yhat_lower``, ``yhat`` and ``yhat_upper`` (``ModelConfig.quantiles``).
    Forecasts are inner-joined with actuals on ``(series_id, target_date)``; rows without an
    actual are left out. The MASE scale of a series comes from its ``history`` rows dated on or
    before its earliest forecast date (NaN without such history).

    Returns one row per ``(model, series_id, horizon)`` and one with horizon ``"ALL"`` per
    ``(model, series_id)``; ``horizon`` is a string column. Columns: ``model, series_id,
    horizon, n, mae, rmse, mase, smape, pinball_<q> (x3), coverage, width``.

    Every group is scored at once: the means of the rows' terms (:func:`score_rows`) per group,
    one grouped aggregation for all models, series and horizons (the same figures as the
    scikit-learn functions above, to rounding; a nightly backtest has thousands of groups).
    """
    joined, scales = _prepare(forecasts, actuals, history, season, quantiles)
    return _summary(_terms(joined, scales, quantiles), scales, quantiles, MODEL)


def score_rows_and_summary(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    history: pd.DataFrame,
    season: int = 1,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    model: str = MODEL,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`score_rows` and :func:`score_forecasts` of the same forecasts, joined and scored
    once; the summary's models are the values of the forecasts' column ``model`` (a model
    version, say), under that column's name. The rows carry ``schema.MASE_SCALE`` too, the series'
    scale (``scaled_error`` is ``abs_error`` over it, where it is positive): the SQL store of a
    night's backtest keeps the scale per series and the rest once per window."""
    joined, scales = _prepare(forecasts, actuals, history, season, quantiles)
    terms = _terms(joined, scales, quantiles)
    summary = _summary(terms, scales, quantiles, model)
    return _rows(terms, forecasts, (schema.MASE_SCALE,)), summary


def _summary(
    terms: pd.DataFrame, scales: dict[str, float], quantiles: Sequence[float], model: str
) -> pd.DataFrame:
    """The metrics per ``(model, series, horizon)`` and over all horizons, from ``terms``
    (:func:`_terms`; two columns are added for the means and removed again)."""
    terms["width"] = terms["yhat_upper"] - terms["yhat_lower"]
    terms["covered_share"] = terms["covered"].astype(np.float64)
    means = {
        "abs_error": "mae",
        "squared_error": "rmse",
        "smape": "smape",
        "pinball_lower": pinball_column(quantiles[0]),
        "pinball_median": pinball_column(quantiles[1]),
        "pinball_upper": pinball_column(quantiles[2]),
        "covered_share": "coverage",
        "width": "width",
    }
    keys = [model, schema.SERIES_ID]
    parts = []
    for by, label in ((["horizon"], None), ([], ALL_HORIZONS)):
        grouped = terms.groupby(keys + by, sort=True)
        part = grouped[list(means)].mean().rename(columns=means)
        part.insert(0, "n", grouped.size())
        part = part.reset_index()
        part["order"] = (
            part["horizon"].astype(np.int64) if label is None else np.iinfo(np.int64).max
        )
        part["horizon"] = part["horizon"].astype(str) if label is None else label
        parts.append(part)
    del terms["width"], terms["covered_share"]
    out = pd.concat(parts, ignore_index=True).sort_values([*keys, "order"], kind="stable")
    out["rmse"] = np.sqrt(out["rmse"])
    scale = out[schema.SERIES_ID].map(scales).to_numpy(np.float64)
    out["mase"] = _ratios(out["mae"].to_numpy(np.float64), scale)
    columns = [model, schema.SERIES_ID, "horizon", "n", "mae", "rmse", "mase", "smape"]
    columns += [pinball_column(q) for q in quantiles] + ["coverage", "width"]
    return out[columns].reset_index(drop=True)


ROW_METRICS = [
    "actual",
    "abs_error",
    "squared_error",
    "scaled_error",
    "smape",
    "pinball_lower",
    "pinball_median",
    "pinball_upper",
    "covered",
]


def score_rows(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    history: pd.DataFrame,
    season: int = 1,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
) -> pd.DataFrame:
    """Forecast rows joined with their actuals, with each row's share of every metric.

    Same inputs and join as :func:`score_forecasts`; returns the forecast rows that have an
    actual plus ``ROW_METRICS``: ``abs_error``, ``squared_error``, ``scaled_error`` (the
    absolute error over the series' MASE scale), the row's ``smape`` term (0..200), the pinball
    loss of ``yhat_lower``/``yhat``/``yhat_upper`` at their quantile levels, and ``covered``
    (the actual inside the band). Averaging a column over any group gives that group's MAE,
    MSE (RMSE = its root), MASE, sMAPE, pinball loss and coverage, so a SQL view over these rows
    agrees with :func:`score_forecasts`.
    """
    joined, scales = _prepare(forecasts, actuals, history, season, quantiles)
    return _rows(_terms(joined, scales, quantiles), forecasts)


def _rows(terms: pd.DataFrame, forecasts: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """The forecasts' columns (and ``model``) of ``terms``, then ``ROW_METRICS`` and
    ``extra`` columns of ``terms``."""
    keep = [c for c in terms.columns if c in forecasts.columns or c == MODEL]
    out = terms[[*keep, schema.Y, *ROW_METRICS[1:], *extra]]  # one copy: the rows kept
    out.columns = [*keep, *ROW_METRICS, *extra]  # y is the actual
    return out


def _terms(
    joined: pd.DataFrame, scales: dict[str, float], quantiles: Sequence[float]
) -> pd.DataFrame:
    """``joined`` (the caller's own frame, added to in place) with each row's metric terms
    (``ROW_METRICS`` but ``actual``), vectorised."""
    y = joined[schema.Y].to_numpy(np.float64)
    yhat = joined["yhat"].to_numpy(np.float64)
    lower = joined["yhat_lower"].to_numpy(np.float64)
    upper = joined["yhat_upper"].to_numpy(np.float64)
    error = np.abs(y - yhat)
    scale = joined[schema.SERIES_ID].map(scales).to_numpy(np.float64)
    den = np.abs(y) + np.abs(yhat)
    out = joined
    out[schema.MASE_SCALE] = scale
    with np.errstate(divide="ignore", invalid="ignore"):
        out["scaled_error"] = np.where(scale > 0, error / scale, np.nan)
    out["abs_error"] = error
    out["squared_error"] = error**2
    out["smape"] = 200.0 * np.divide(error, den, out=np.zeros_like(error), where=den > 0)
    for name, q, pred in zip(
        ("pinball_lower", "pinball_median", "pinball_upper"),
        quantiles,
        (lower, yhat, upper),
        strict=True,
    ):
        diff = y - pred
        out[name] = np.maximum(q * diff, (q - 1) * diff)
    out["covered"] = (y >= lower) & (y <= upper)
    return out


def _prepare(
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    history: pd.DataFrame,
    season: int,
    quantiles: Sequence[float],
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Check the inputs; the forecasts joined with their actuals, and the MASE scale per series."""
    require_columns(forecasts, FORECAST_COLUMNS, "forecasts")
    require_columns(actuals, ACTUAL_COLUMNS, "actuals")
    require_columns(history, ACTUAL_COLUMNS, "history")
    if len(quantiles) != 3:
        raise ValueError(f"quantiles must be [lower, median, upper], got {list(quantiles)}")
    joined = _join(forecasts, actuals)
    return joined, _scales(history, joined, season)


def require_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    """Raise ValueError naming the ``columns`` ``frame`` (called ``name``) lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing} (it has {list(frame.columns)})")


def _join(forecasts: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    if actuals.duplicated([schema.SERIES_ID, schema.DATE]).any():
        raise ValueError("actuals have more than one row for a (series_id, date)")
    changes: dict[str, object] = {}
    if forecasts["target_date"].dtype != "datetime64[ns]":
        changes["target_date"] = pd.to_datetime(forecasts["target_date"]).astype("datetime64[ns]")
    if MODEL not in forecasts:
        changes[MODEL] = DEFAULT_MODEL
    left = forecasts.assign(**changes) if changes else forecasts  # merge copies; assign too
    right = actuals[ACTUAL_COLUMNS].rename(columns={schema.DATE: "target_date"})
    right = right.assign(target_date=pd.to_datetime(right["target_date"]).astype("datetime64[ns]"))
    right = right.loc[right[schema.Y].notna()]
    joined = left.merge(right, on=[schema.SERIES_ID, "target_date"], how="inner")
    if joined.empty:
        raise ValueError(
            f"no forecast matches an actual on (series_id, target_date): {len(forecasts)} "
            f"forecast rows, {len(right)} actuals; are the actuals for the target dates loaded?"
        )
    return joined


def _scales(history: pd.DataFrame, joined: pd.DataFrame, season: int) -> dict[str, float]:
    first = joined.groupby(schema.SERIES_ID)["forecast_date"].min()
    hist = history.loc[history[schema.Y].notna(), ACTUAL_COLUMNS]  # not every feature column
    hist = hist.sort_values([schema.SERIES_ID, schema.DATE])
    out = {}
    for series, frame in hist.groupby(schema.SERIES_ID, sort=False):
        if series in first.index:
            keep = pd.to_datetime(frame[schema.DATE]) <= pd.Timestamp(first[series])
            out[series] = naive_scale(frame.loc[keep, schema.Y].to_numpy(), season)
    return out


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """:func:`pipeline_lib.evaluation.metrics._ratio` element-wise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    zero = den == 0
    out[zero] = np.where(num[zero] == 0, np.nan, np.inf)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out
