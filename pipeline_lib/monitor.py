"""The monitoring stage: input drift (per series and feature, the model's training window
against the recent window), performance decay of the published forecasts whose target date has
passed, and prediction drift of tonight's forecasts against those made in the training window.
All rows go to ``drift_metrics`` (see :mod:`pipeline_lib.drift` and :mod:`pipeline_lib.decay`).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import decay, schema
from pipeline_lib.config import DriftConfig
from pipeline_lib.drift import DRIFT_COLUMNS, drift_table

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
    """Drift rows (series_id, feature, metric, value, threshold, is_drift, forecast_date)."""
    reference, recent = drift_windows(train_start, as_of, cfg.recent_days)
    rows = features[features[schema.DATE] <= pd.Timestamp(as_of)]
    table = drift_table(
        rows,
        DRIFT_FEATURES,
        reference,
        recent,
        psi_bins=cfg.psi_bins,
        psi_threshold=cfg.psi_threshold,
        ks_pvalue_threshold=cfg.ks_pvalue_threshold,
        wasserstein_threshold=cfg.wasserstein_threshold,
        mean_shift_threshold=cfg.mean_shift_threshold,
        std_ratio_threshold=cfg.std_ratio_threshold,
    )
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
    actuals = features.loc[features[schema.DATE] <= pd.Timestamp(as_of)]
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
    return decay.prediction_drift(
        tonight,
        reference,
        shift_threshold=cfg.prediction_shift_threshold,
        ks_pvalue_threshold=cfg.ks_pvalue_threshold,
        wasserstein_threshold=cfg.wasserstein_threshold,
    )


def monitoring_rows(
    features: pd.DataFrame,
    tonight: pd.DataFrame,
    published: pd.DataFrame,
    backtest: pd.DataFrame,
    train_start: dt.date,
    as_of: dt.date,
    cfg: DriftConfig,
    quantiles: list[float],
) -> pd.DataFrame:
    """Every monitoring row of a night: input drift, decay and prediction drift, dated
    ``as_of``. ``published``: forecasts in SQL made from the training start to the night
    before (the decay's and the prediction drift's reference)."""
    reference_end = drift_windows(train_start, as_of, cfg.recent_days)[0][1]
    made = pd.to_datetime(published["forecast_date"])
    reference = published.loc[made <= pd.Timestamp(reference_end)]
    parts = [
        drift_metrics(features, train_start, as_of, cfg).drop(columns="forecast_date"),
        decay_rows(features, published, backtest, as_of, cfg, quantiles),
        prediction_rows(tonight, reference, cfg),
    ]
    rows = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    return rows.assign(forecast_date=as_of)
