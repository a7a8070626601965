"""The features stage: curated data as of a date -> feature rows, stored as partitioned Parquet."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.curate import read_curated
from pipeline_lib.features.build import build_features
from pipeline_lib.store import read_dataset, upsert_partitions, with_year
from pipeline_lib.validation import raise_if_failed, validate_batch


def refresh_features(settings: Settings, as_of: dt.date) -> int:
    """Rebuild the features of every configured series from curated data dated <= as_of.

    Rows are upserted on (series_id, date); rows dated after ``as_of`` (from a later run) are
    left as they are. Returns the number of feature rows written. The frame is validated first
    (``features_suite``): a critical failure raises ValidationFailed and nothing is written.
    """
    locations = {s.id: (s.weather.name if s.weather else None) for s in settings.series}
    prices = read_curated(settings.data_dir, schema.PRICES, list(locations), as_of)
    weather = read_curated(
        settings.data_dir, schema.WEATHER, sorted({v for v in locations.values() if v}), as_of
    )
    feats = build_features(prices, weather, locations, as_of)
    if not feats.empty:
        report = validate_batch(feats, schema.FEATURES, as_of, f"features-{as_of.isoformat()}")
        raise_if_failed([report], {report.key: "none: features not written (rebuilt on rerun)"})
        upsert_partitions(
            with_year(feats),
            paths.features_dir(settings.data_dir),
            key=schema.FEATURE_KEY,
            partition_cols=[schema.SERIES_ID, "year"],
        )
    return len(feats)


def load_features(settings: Settings, as_of: dt.date) -> pd.DataFrame:
    """Stored features of the configured series, dated on or before ``as_of`` only."""
    feats = read_dataset(
        paths.features_dir(settings.data_dir),
        columns=schema.FEATURE_COLUMNS,
        filters={schema.SERIES_ID: settings.series_ids},
        date_to=as_of,
    )
    return feats.sort_values(schema.FEATURE_KEY).reset_index(drop=True)
