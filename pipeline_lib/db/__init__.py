"""SQL tables and idempotent writers, on SQLite and PostgreSQL (SQLAlchemy Core)."""

from pipeline_lib.db.engine import create_schema, make_engine
from pipeline_lib.db.tables import (
    backtest_results,
    drift_metrics,
    forecasts,
    metadata,
    model_versions,
    pipeline_runs,
    validation_results,
)
from pipeline_lib.db.writers import (
    finish_run,
    set_model_statuses,
    start_run,
    upsert_model_version,
    write_backtest_results,
    write_drift_metrics,
    write_forecasts,
    write_validation_results,
)

__all__ = [
    "backtest_results",
    "create_schema",
    "drift_metrics",
    "finish_run",
    "forecasts",
    "make_engine",
    "metadata",
    "model_versions",
    "pipeline_runs",
    "set_model_statuses",
    "start_run",
    "upsert_model_version",
    "validation_results",
    "write_backtest_results",
    "write_drift_metrics",
    "write_forecasts",
    "write_validation_results",
]
