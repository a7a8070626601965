"""SQL tables and idempotent writers, on SQLite and PostgreSQL (SQLAlchemy Core)."""

from pipeline_lib.db.engine import create_schema, make_engine
from pipeline_lib.db.tables import (
    drift_metrics,
    forecasts,
    metadata,
    model_versions,
    pipeline_runs,
    validation_results,
)
from pipeline_lib.db.writers import (
    finish_run,
    start_run,
    upsert_model_version,
    write_drift_metrics,
    write_forecasts,
    write_validation_results,
)

__all__ = [
    "create_schema",
    "drift_metrics",
    "finish_run",
    "forecasts",
    "make_engine",
    "metadata",
    "model_versions",
    "pipeline_runs",
    "start_run",
    "upsert_model_version",
    "validation_results",
    "write_drift_metrics",
    "write_forecasts",
    "write_validation_results",
]
