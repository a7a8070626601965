"""The SQL tables BI tools read: one MetaData, portable across SQLite and PostgreSQL.

JSON payloads (hyper-parameters, metrics, run details) are stored as JSON text so the same
DDL works on both engines. ``sql/schema.sql`` is generated from this package
(``python -m pipeline_lib.db.ddl``); edit here, then regenerate. Importing the package registers
every table on :data:`metadata` (:mod:`.columns`): what BI reads each night in
:mod:`.published`, the backtest in :mod:`.backtest`, the models in :mod:`.models`, the runs'
audit in :mod:`.audit`.
"""

from __future__ import annotations

from pipeline_lib.db.tables.audit import (
    RUN_STATUSES,
    pipeline_runs,
    schema_state,
    validation_results,
)
from pipeline_lib.db.tables.backtest import (
    backtest_forecasts,
    backtest_nights,
    backtest_results,
    backtest_scores,
    backtest_series,
    backtest_windows,
    views,
)
from pipeline_lib.db.tables.columns import NAMING_CONVENTION, metadata
from pipeline_lib.db.tables.models import (
    MODEL_KINDS,
    TRAINING_ACTIONS,
    model_selections,
    model_versions,
    training_decisions,
)
from pipeline_lib.db.tables.published import actuals, drift_metrics, forecasts

__all__ = [
    "MODEL_KINDS",
    "NAMING_CONVENTION",
    "RUN_STATUSES",
    "TRAINING_ACTIONS",
    "actuals",
    "backtest_forecasts",
    "backtest_nights",
    "backtest_results",
    "backtest_scores",
    "backtest_series",
    "backtest_windows",
    "drift_metrics",
    "forecasts",
    "metadata",
    "model_selections",
    "model_versions",
    "pipeline_runs",
    "schema_state",
    "training_decisions",
    "validation_results",
    "views",
]
