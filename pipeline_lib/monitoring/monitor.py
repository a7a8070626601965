"""The monitoring stage: input drift (per series and feature, the model's training window
against the recent window), performance decay of the published forecasts whose target date has
passed, and prediction drift of tonight's forecasts against those made in the training window.
All rows go to ``drift_metrics`` (see :mod:`pipeline_lib.monitoring.drift` and
:mod:`pipeline_lib.monitoring.decay`).

A night runs it in two steps: :func:`before_training` (input drift and decay, against the
current model, so the retraining policy can read them) and :func:`with_predictions` (the
prediction drift of tonight's forecast, added once it exists).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import DriftConfig
from pipeline_lib.monitoring import decay, prediction_drift
from pipeline_lib.monitoring.drift import DRIFT_COLUMNS, drift_table

DRIFT_FEATURES = [schema.Y, *schema.PAST_FEATURES]


def drift_windows(
    train_start: dt.date, as_of: dt.date, recent_days: int
) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """(reference, recent): the recent window is the last ``recent_days`` up to as_of; the
    reference is the model's training window before it, so the two never overlap."""
    recent_start = as_of - dt.timedelta(days=recent_days - 1)
    reference_end = recent_start - dt.timedelta(days=1)
    reference_start = min(train_start, reference_end)
    return (reference_start, reference_end), (recent_start, as_of)


def drift_metrics(
    features: pd.DataFrame, train_start: dt.date, as_of: dt.date, cfg: DriftConfig
) -> pd.DataFrame:
    """Drift rows (series_id, feature, metric, value, threshold, is_drift, forecast_date) of
    ``DRIFT_FEATURES`` and of the covariates ``features`` carries."""
    reference, recent = drift_windows(train_start, as_of, cfg.recent_days)
    rows = schema.dated_up_to(features, as_of)
    # the declared covariates too (their own-date values; the leads repeat them a day later)
    covariates = [c for c in rows.columns if c not in schema.FEATURE_COLUMNS and "@" not in c]
    names = [*DRIFT_FEATURES, *covariates]
    table = drift_table(rows, names, reference, recent, **cfg.table_options())
    return table.assign(forecast_date=as_of)


def decay_rows(
    features: pd.DataFrame,
    published: pd.DataFrame,
    backtest: pd.DataFrame,
    as_of: dt.date,
    cfg: DriftConfig,
    quantiles: list[float],
) -> pd.DataFrame:
    """Performance decay of ``published`` forecasts (from SQL) whose target date has passed, the
    actuals taken from ``features``; ``backtest``: the rows of the newest backtest before
    tonight. The nominal coverage is the model's outer quantiles' span."""
    actuals = schema.dated_up_to(features, as_of)
    actuals = actuals[[schema.SERIES_ID, schema.DATE, schema.Y]].rename(
        columns={schema.DATE: "target_date", schema.Y: "actual"}
    )
    errors = decay.realised_errors(published, actuals, as_of)
    if errors.empty or backtest.empty:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    return decay.decay_metrics(
        errors,
        backtest,
        as_of,
        window_days=cfg.decay_window_days,
        nominal_coverage=max(quantiles) - min(quantiles),
        mase_ratio_threshold=cfg.mase_ratio_threshold,
        coverage_gap_threshold=cfg.coverage_gap_threshold,
        min_realised=cfg.min_realised,
    )


def prediction_rows(
    tonight: pd.DataFrame, reference: pd.DataFrame, cfg: DriftConfig
) -> pd.DataFrame:
    """Prediction drift of tonight's forecasts against those published in the reference
    window (the model's training window)."""
    if tonight.empty or reference.empty:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    return prediction_drift.prediction_drift(
        tonight,
        reference,
        shift_threshold=cfg.prediction_shift_threshold,
        ks_pvalue_threshold=cfg.ks_pvalue_threshold,
        wasserstein_threshold=cfg.wasserstein_threshold,
    )


@dataclass(frozen=True)
class Monitoring:
    """A night's monitoring before training.

    ``train_start``: the start of the reference model's training window (``model_version``;
    None when there is no model yet and the reference is the window tonight's full training
    will use); ``rows``: input drift and decay rows dated ``as_of``; ``published``: the
    forecasts read from SQL (decay's input; those made by ``reference_end`` are the prediction
    drift's reference)."""

    as_of: dt.date
    model_version: str | None
    train_start: dt.date
    reference_end: dt.date
    rows: pd.DataFrame
    published: pd.DataFrame


def before_training(
    features: pd.DataFrame,
    published: pd.DataFrame,
    backtest: pd.DataFrame,
    train_start: dt.date,
    as_of: dt.date,
    cfg: DriftConfig,
    quantiles: list[float],
    model_version: str | None = None,
) -> Monitoring:
    """Input drift against the training window from ``train_start`` and the decay of
    ``published`` forecasts (made from the training start to the night before) against
    ``backtest`` (the newest backtest before tonight)."""
    reference_end = drift_windows(train_start, as_of, cfg.recent_days)[0][1]
    parts = [
        drift_metrics(features, train_start, as_of, cfg),
        decay_rows(features, published, backtest, as_of, cfg, quantiles),
    ]
    rows = _dated([p for p in parts if not p.empty], as_of)
    return Monitoring(as_of, model_version, train_start, reference_end, rows, published)


def with_predictions(
    monitoring: Monitoring, tonight: pd.DataFrame, cfg: DriftConfig
) -> pd.DataFrame:
    """Every monitoring row of the night: ``monitoring.rows`` and the prediction drift of
    ``tonight``'s forecasts against those published in the reference window."""
    made = pd.to_datetime(monitoring.published["forecast_date"])
    reference = monitoring.published.loc[made <= pd.Timestamp(monitoring.reference_end)]
    predictions = prediction_rows(tonight, reference, cfg)
    parts = [p for p in (monitoring.rows, predictions) if not p.empty]
    return _dated(parts, monitoring.as_of)


def _dated(parts: list[pd.DataFrame], as_of: dt.date) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=[*DRIFT_COLUMNS, "forecast_date"])
    rows = pd.concat([p[DRIFT_COLUMNS] for p in parts], ignore_index=True)
    return rows.assign(forecast_date=as_of)
