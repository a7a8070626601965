"""Feature building (point-in-time correct) and calendar encodings."""

from pipeline_lib.features.build import build_features, price_features
from pipeline_lib.features.calendar import calendar_features

__all__ = ["build_features", "calendar_features", "price_features"]
