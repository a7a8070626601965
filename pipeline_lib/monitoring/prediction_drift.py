"""Prediction drift of tonight's forecasts against those published in the model's training
window, from plain DataFrames, in the long format of :mod:`pipeline_lib.monitoring.drift`
(``DRIFT_COLUMNS``), so its rows go to ``drift_metrics`` with the input drift and the decay.

Feature ``prediction`` (the forecast levels ``yhat``) or ``prediction_change`` (``yhat`` over
the last actual on or before the forecast date, minus 1: the change the model predicts, free
of the price level); each forecast date counts once, as the mean over its horizons; see
:func:`prediction_drift`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.evaluation.scoring import require_columns
from pipeline_lib.monitoring.decay import ACTUALS_COLUMNS, as_dates
from pipeline_lib.monitoring.drift import MIN_VALUES, compare, drift_frame

PREDICTION_FEATURE = "prediction"
PREDICTION_CHANGE_FEATURE = "prediction_change"
MIN_PREDICTION_DATES = 20  # forecast dates needed for the distribution checks of predictions


def prediction_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    actuals: pd.DataFrame | None = None,
    shift_threshold: float = 3.0,
    ks_pvalue_threshold: float = 0.01,
    wasserstein_threshold: float = 0.4,
    min_dates: int = MIN_PREDICTION_DATES,
) -> pd.DataFrame:
    """Prediction drift per series: ``current`` forecasts against the ``reference`` ones.

    Both are forecast rows (series_id, forecast_date, yhat): ``current`` tonight's forecasts
    (or those of a recent window), ``reference`` the forecasts made during the reference
    period (the champion's training window). The values are the ``yhat`` levels (feature
    ``prediction``) or, when ``actuals`` (series_id, target_date, actual) are given, the
    predicted change ``yhat / anchor - 1``, the anchor being the series' last actual on or
    before the forecast date (feature ``prediction_change``, free of the price level; rows
    without an anchor are left out).

    Each forecast date counts once, as the mean of its values over its horizons. The horizons
    of one night's forecast are one path, not independent draws: compared row by row, 30
    unmoved nights of 14 horizons looked like 420 observations and failed KS. Averaging over
    the horizons also makes a per-horizon normalisation unnecessary (every night holds the
    same horizons), and tonight is a single value.

    Rows per series, in ``DRIFT_METRICS`` order:

    - ``ks_statistic``, ``ks_pvalue`` and ``wasserstein_std`` (see
      :mod:`pipeline_lib.monitoring.drift`) of the nightly values, only when ``current``
      spans at least ``min_dates`` forecast dates (tonight alone is one value). No PSI: its
      small-sample bias (about (bins - 1) / n) is large for a few weeks of nights.
    - ``mean_shift``: ``(mean(current) - mean(reference)) / std(reference)`` over the nightly
      values, always, flagged when ``|value| > shift_threshold``. For tonight alone it is a
      z-score: with normally distributed nightly forecasts the default 3 flags 0.3% of the
      nights, where 2 would flag one night in twenty. Like the input drift's, these checks
      assume independent nights; forecasts of a trending level (prices) move with it.

    A series with fewer than ``MIN_VALUES`` reference nights, or no current night, has no rows.
    """
    need = [schema.SERIES_ID, "forecast_date", "yhat"]
    require_columns(current, need, "current")
    require_columns(reference, need, "reference")
    feature = PREDICTION_FEATURE
    cur, ref = current[need], reference[need]
    if actuals is not None:
        require_columns(actuals, ACTUALS_COLUMNS, "actuals")
        feature = PREDICTION_CHANGE_FEATURE
        cur, ref = _predicted_change(cur, actuals), _predicted_change(ref, actuals)
    cur, ref = _nightly(cur), _nightly(ref)
    rows: list[tuple[object, ...]] = []
    for series, now in cur.groupby(schema.SERIES_ID, sort=True):
        cur_v = now["yhat"].to_numpy(np.float64)
        ref_v = ref.loc[ref[schema.SERIES_ID] == series, "yhat"].to_numpy(np.float64)
        if ref_v.size < MIN_VALUES or cur_v.size == 0:
            continue
        metrics = ["mean_shift"]
        if cur_v.size >= max(min_dates, MIN_VALUES):
            metrics = ["ks_statistic", "ks_pvalue", "wasserstein_std", "mean_shift"]
        for metric, value, threshold, flag in compare(
            ref_v,
            cur_v,
            metrics=metrics,
            ks_pvalue_threshold=ks_pvalue_threshold,
            wasserstein_threshold=wasserstein_threshold,
            mean_shift_threshold=shift_threshold,
        ):
            rows.append((series, feature, metric, value, threshold, flag))
    return drift_frame(rows)


def _nightly(forecasts: pd.DataFrame) -> pd.DataFrame:
    """One row per (series_id, forecast_date): the mean of its finite ``yhat``."""
    values = pd.to_numeric(forecasts["yhat"], errors="coerce")
    rows = forecasts.assign(yhat=values, forecast_date=as_dates(forecasts["forecast_date"])).loc[
        np.isfinite(values)
    ]
    keys = [schema.SERIES_ID, "forecast_date"]
    return rows.groupby(keys, as_index=False, sort=True)["yhat"].mean()


def _predicted_change(forecasts: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """``yhat`` replaced by ``yhat / anchor - 1``: the anchor is the series' last actual dated
    on or before the forecast date; rows without one (or with a zero anchor) are dropped."""
    left = forecasts.assign(forecast_date=as_dates(forecasts["forecast_date"]))
    left = left.reset_index(drop=True).reset_index(names="_row").sort_values("forecast_date")
    right = actuals.loc[actuals["actual"].notna(), ACTUALS_COLUMNS]
    right = right.assign(target_date=as_dates(right["target_date"])).sort_values("target_date")
    joined = pd.merge_asof(
        left,
        right,
        left_on="forecast_date",
        right_on="target_date",
        by=schema.SERIES_ID,
        direction="backward",
    ).sort_values("_row")
    anchor = joined["actual"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = joined["yhat"].to_numpy(np.float64) / anchor - 1.0
    keep = np.isfinite(change)
    out = joined.loc[keep, [schema.SERIES_ID, "forecast_date"]]
    return out.assign(yhat=change[keep]).reset_index(drop=True)
