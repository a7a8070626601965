"""Performance decay of the published forecasts, from plain DataFrames.

Rows come in the long format of :mod:`pipeline_lib.monitoring.drift` (``DRIFT_COLUMNS``: series_id,
feature, metric, value, threshold, is_drift), so they go to ``drift_metrics`` with the input
drift. ``threshold`` is NaN (NULL) on a descriptive row; such a row carries the flag of the
test it belongs to, as ``ks_statistic`` does in the input drift.

Performance decay (:func:`decay_metrics`), over the forecasts whose target date falls in the
last ``window_days`` up to the as-of date and has an actual (:func:`realised_errors`):

- feature ``forecast_error``: all horizons of a series together; ``forecast_error_h<h>``: one
  horizon. Each group needs ``min_realised`` (30) realised forecasts, else it has no rows:
  per horizon that is about the number of forecast dates in the window, so with nightly
  forecasts and a 180-day window (~126 business days) every horizon gets its rows, and a new
  series or a sparse history gets only its all-horizons rows, or none. At 30 the binomial
  noise of an 80% coverage (0.073) is below the 0.10 threshold.
- the errors of one horizon on consecutive nights overlap, and all horizons of a target date
  share its surprise, so the estimates are noisier than their counts suggest: on a calibrated
  naive forecast of a random walk, at the defaults, ``mase_ratio`` flags about one night in
  six and ``coverage_gap`` one in sixteen (all horizons; ``bench/drift_false_alarms.py``). The
  retraining policy (:mod:`pipeline_lib.monitoring.policy`) counts a series' flag once, not every
  night.
- metrics, in this order: ``n_realised`` (count, never a flag); ``mae``; ``mase``, the MAE
  over the series' scale; ``backtest_mase``, what the backtest of the same models says for the
  same horizons; ``mase_ratio`` = mase / backtest_mase, flagged above ``mase_ratio_threshold``
  (1.2); ``coverage``, the share of actuals inside ``[yhat_lower, yhat_upper]``;
  ``coverage_gap`` = coverage - ``nominal_coverage``, flagged when ``|gap|`` is above
  ``coverage_gap_threshold`` (0.10). ``mae``, ``mase`` and ``backtest_mase`` carry the ratio's
  flag, ``coverage`` the gap's.
- the backtest figure of a live forecast is the mean ``scaled_error`` of the backtest rows of
  its series, ``model`` and horizon; ``backtest_mase`` averages it over the group's forecasts,
  so a series that switched between the LSTM and a baseline inside the window is compared with
  the same mix. Forecasts whose model has no backtest row for that series and horizon are left
  out of ``mase``, ``backtest_mase`` and the ratio (which need ``min_realised`` forecasts too).
- the MASE scale of a series: ``mase_scale[series]`` when given (e.g.
  :func:`pipeline_lib.evaluation.metrics.naive_scale` of its actuals before the window), else
  the scale the backtest used (``sum(abs_error) / sum(scaled_error)`` of its rows with a finite
  positive scaled_error), so that by default the ratio is the live MAE over the backtest MAE of
  the same models and horizons. Without a finite positive scale the series has no MASE rows.
- the backtest is needed only as a summary per (series_id, model, horizon)
  (``BACKTEST_SUMMARY_COLUMNS``, :func:`backtest_summary`): a night's backtest is ~400,000 rows
  at 100 series, its summary a few thousand, so the night's writer stores the summary with the
  night and the monitoring reads it (:func:`pipeline_lib.db.read_backtest_summary`);
  :func:`decay_metrics` takes either.

Prediction drift is :mod:`pipeline_lib.monitoring.prediction_drift`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.db.backtests import SCORE_FIELDS, scores_of
from pipeline_lib.evaluation.metrics import MODEL, coverage, mae
from pipeline_lib.evaluation.scoring import require_columns
from pipeline_lib.monitoring.drift import drift_frame
from pipeline_lib.schema import FORECAST_COLUMNS

ERROR_FEATURE = "forecast_error"
DECAY_METRICS = [
    "n_realised",
    "mae",
    "mase",
    "backtest_mase",
    "mase_ratio",
    "coverage",
    "coverage_gap",
]
ACTUALS_COLUMNS = [schema.SERIES_ID, "target_date", "actual"]  # the actuals table's
ERRORS_COLUMNS = [schema.SERIES_ID, "target_date", "horizon", MODEL, "yhat", "actual"]
BACKTEST_COLUMNS = [schema.SERIES_ID, MODEL, "horizon", "abs_error", "scaled_error"]
# per (series_id, model, horizon): the mean finite scaled_error, and the sums of abs_error and
# scaled_error over the rows whose scaled_error is finite and positive (NaN when none); what
# the night's writer stores and pipeline_lib.db.read_backtest_summary reads
BACKTEST_SUMMARY_COLUMNS = SCORE_FIELDS
MIN_REALISED = 30  # fewer realised forecasts in a group: no rows for it


def horizon_feature(horizon: int) -> str:
    """The ``feature`` of one horizon's decay rows: ``forecast_error_h5`` for horizon 5."""
    return f"{ERROR_FEATURE}_h{int(horizon)}"


def realised_errors(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, as_of: dt.date | None = None
) -> pd.DataFrame:
    """The forecasts whose target date has passed, with their actual and errors.

    ``forecasts`` has the forecast columns (series_id, forecast_date, target_date, horizon,
    yhat, yhat_lower, yhat_upper; model and model_version are kept when present) and
    ``actuals`` the columns of the actuals table (series_id, target_date, actual). They are
    inner-joined on (series_id, target_date), keeping target dates on or before ``as_of``
    (every actual when None; a backfill passes its date so later actuals stay unseen).

    Returns the forecast columns plus ``actual``, ``error`` (actual - yhat, as the
    ``forecast_errors`` view), ``abs_error`` and ``covered`` (yhat_lower <= actual <=
    yhat_upper, nullable boolean: NA when a bound is missing), sorted by series_id,
    forecast_date and target_date; dates as datetime64. Empty when nothing is realised yet.
    """
    require_columns(forecasts, FORECAST_COLUMNS, "forecasts")
    require_columns(actuals, ACTUALS_COLUMNS, "actuals")
    if actuals.duplicated([schema.SERIES_ID, "target_date"]).any():
        raise ValueError("actuals have more than one row for a (series_id, target_date)")
    left = forecasts.assign(
        forecast_date=as_dates(forecasts["forecast_date"]),
        target_date=as_dates(forecasts["target_date"]),
    )
    right = actuals[ACTUALS_COLUMNS].assign(target_date=as_dates(actuals["target_date"]))
    right = right.loc[right["actual"].notna()]
    if as_of is not None:
        right = right.loc[right["target_date"] <= pd.Timestamp(as_of)]
    out = left.merge(right, on=[schema.SERIES_ID, "target_date"], how="inner")
    y = out["actual"].to_numpy(np.float64)
    lower = out["yhat_lower"].to_numpy(np.float64)
    upper = out["yhat_upper"].to_numpy(np.float64)
    out["error"] = y - out["yhat"].to_numpy(np.float64)
    out["abs_error"] = np.abs(out["error"])
    known = np.isfinite(lower) & np.isfinite(upper)
    inside = (lower <= y) & (y <= upper)
    out["covered"] = pd.array(np.where(known, inside, None), dtype="boolean")
    keys = [schema.SERIES_ID, "forecast_date", "target_date"]
    return out.sort_values(keys, kind="stable", ignore_index=True)


def decay_metrics(
    errors: pd.DataFrame,
    backtest: pd.DataFrame,
    as_of: dt.date,
    window_days: int = 180,
    nominal_coverage: float = 0.8,
    mase_scale: Mapping[str, float] | None = None,
    mase_ratio_threshold: float = 1.2,
    coverage_gap_threshold: float = 0.10,
    min_realised: int = MIN_REALISED,
) -> pd.DataFrame:
    """Performance decay rows per series, all horizons together and per horizon.

    ``errors``: realised forecasts (:func:`realised_errors`, or rows of the
    ``forecast_errors`` view), with at least series_id, target_date, horizon, model, yhat,
    actual (and yhat_lower, yhat_upper for coverage). Only those with a target date in
    ``[as_of - window_days + 1, as_of]`` count. ``backtest``: the rows of the backtest the
    published models were judged on (``backtest_results`` columns; at least series_id, model,
    horizon, abs_error, scaled_error), e.g. the latest backtest dated before the window.
    Or, the same figures with fewer rows, its summary (``BACKTEST_SUMMARY_COLUMNS``:
    :func:`backtest_summary` of those rows, or :func:`pipeline_lib.db.read_backtest_summary`).
    ``nominal_coverage``: the interval's level, upper minus lower quantile of the model config
    (0.8 for 10-90%). Metrics, flags, groups and the minimum sample are in the module
    docstring. Rows sorted by series, then ``forecast_error`` and the horizons ascending, then
    in ``DECAY_METRICS`` order.
    """
    require_columns(errors, ERRORS_COLUMNS, "errors")
    summary = _summary(backtest)
    if window_days < 1 or min_realised < 1:
        raise ValueError(f"window_days and min_realised must be >= 1: {window_days, min_realised}")
    if not 0.0 < nominal_coverage < 1.0:
        raise ValueError(f"nominal_coverage must be in (0, 1), got {nominal_coverage}")
    end = pd.Timestamp(as_of)
    start = end - pd.Timedelta(days=window_days - 1)
    dates = as_dates(errors["target_date"])
    live = errors.loc[(dates >= start) & (dates <= end) & errors["actual"].notna()]
    live = live.assign(horizon=live["horizon"].astype(int))
    expected = summary.set_index([schema.SERIES_ID, MODEL, "horizon"])["backtest_mase"]
    live = live.join(expected.dropna(), on=[schema.SERIES_ID, MODEL, "horizon"])
    scales = _backtest_scales(summary) if mase_scale is None else dict(mase_scale)
    thresholds = (mase_ratio_threshold, coverage_gap_threshold, nominal_coverage, min_realised)
    rows: list[tuple[object, ...]] = []
    for series, frame in live.groupby(schema.SERIES_ID, sort=True):
        scale = float(scales.get(series, np.nan))
        groups = [(ERROR_FEATURE, frame)]
        groups += [(horizon_feature(h), part) for h, part in frame.groupby("horizon", sort=True)]
        for feature, part in groups:
            for metric, value, threshold, flag in _decay_group(part, scale, *thresholds):
                rows.append((series, feature, metric, value, threshold, flag))
    return drift_frame(rows)


def _decay_group(
    part: pd.DataFrame,
    scale: float,
    ratio_threshold: float,
    gap_threshold: float,
    nominal: float,
    min_realised: int,
) -> list[tuple[str, float, float | None, bool]]:
    """The decay rows of one group of realised forecasts (none when it is too small)."""
    if len(part) < min_realised:
        return []
    y, yhat = part["actual"].to_numpy(np.float64), part["yhat"].to_numpy(np.float64)
    mase_rows: list[tuple[str, float, float | None, bool]] = []
    ratio_flag = False
    matched = part.loc[part["backtest_mase"].notna()]
    if np.isfinite(scale) and scale > 0 and len(matched) >= min_realised:
        live = mae(matched["actual"].to_numpy(np.float64), matched["yhat"].to_numpy(np.float64))
        live /= scale
        reference = float(matched["backtest_mase"].mean())
        ratio = live / reference if reference > 0 else float("nan")
        # a backtest without error (reference 0) and live errors: decayed, ratio undefined
        ratio_flag = bool(ratio > ratio_threshold) if np.isfinite(ratio) else live > 0
        mase_rows = [
            ("mase", live, None, ratio_flag),
            ("backtest_mase", reference, None, ratio_flag),
            ("mase_ratio", ratio, ratio_threshold, ratio_flag),
        ]
    rows: list[tuple[str, float, float | None, bool]] = [
        ("n_realised", float(len(part)), None, False),
        ("mae", mae(y, yhat), None, ratio_flag),
    ]
    rows += mase_rows
    if {"yhat_lower", "yhat_upper"} <= set(part.columns):
        lower = part["yhat_lower"].to_numpy(np.float64)
        upper = part["yhat_upper"].to_numpy(np.float64)
        known = np.isfinite(lower) & np.isfinite(upper)
        if known.sum() >= min_realised:
            share = coverage(y[known], lower[known], upper[known])
            gap = share - nominal
            flag = bool(abs(gap) > gap_threshold)
            rows += [("coverage", share, None, flag), ("coverage_gap", gap, gap_threshold, flag)]
    return [(m, float(v), t, bool(f)) for m, v, t, f in rows]


def backtest_summary(backtest: pd.DataFrame) -> pd.DataFrame:
    """What decay needs of a backtest's rows (``BACKTEST_COLUMNS``), per (series_id, model,
    horizon): ``backtest_mase``, the mean finite scaled_error (NaN when none is finite), and
    ``scale_abs_error`` and ``scale_scaled_error``, the sums of abs_error and scaled_error over
    the rows whose scaled_error is finite and positive (NaN when there are none): the figures
    the night's writer stores (:func:`pipeline_lib.db.backtests.scores_of`)."""
    require_columns(backtest, BACKTEST_COLUMNS, "backtest")
    return scores_of(backtest)


def _summary(backtest: pd.DataFrame) -> pd.DataFrame:
    """``backtest`` as its summary: given as one, or computed from its rows."""
    if set(BACKTEST_SUMMARY_COLUMNS) <= set(backtest.columns):
        return backtest.assign(horizon=backtest["horizon"].astype(int))
    return backtest_summary(backtest)


def _backtest_scales(summary: pd.DataFrame) -> dict[str, float]:
    """The MASE scale each series had in the backtest: sum(abs_error) / sum(scaled_error) over
    its rows with a finite positive scaled_error (series without one are left out)."""
    known = summary.loc[summary["scale_scaled_error"].notna()]
    sums = known.groupby(schema.SERIES_ID)[["scale_abs_error", "scale_scaled_error"]].sum()
    return (sums["scale_abs_error"] / sums["scale_scaled_error"]).astype(float).to_dict()


def as_dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[ns]")
