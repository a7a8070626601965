"""The drift stage: per series and feature, the training window against the recent window."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import DriftConfig
from pipeline_lib.drift import drift_table

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
