"""Calendar covariates of the dates ahead of a forecast.

Both the encodings and the target dates live in :mod:`pipeline_lib.features.calendar` (one
definition for the past rows the features stage builds and for the target dates of a forecast,
so training and forecasting can never disagree); this module re-exports them for the model.
"""

from __future__ import annotations

from pipeline_lib.features.calendar import calendar_features, future_dates

__all__ = ["calendar_features", "future_dates"]
