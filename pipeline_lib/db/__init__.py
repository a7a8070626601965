"""SQL tables and idempotent writers, on SQLite and PostgreSQL (SQLAlchemy Core)."""

from pipeline_lib.db.engine import driver_url, engine_scope, make_engine, safe_url
from pipeline_lib.db.migrate import create_schema, ensure_current, upgrade
from pipeline_lib.db.readers import read_backtest_summary, read_forecasts, read_latest_backtest
from pipeline_lib.db.runs import finish_run, mark_crashed, start_run, write_validation_results
from pipeline_lib.db.selections import write_model_selections
from pipeline_lib.db.tables import (
    actuals,
    backtest_forecasts,
    backtest_nights,
    backtest_results,
    backtest_scores,
    backtest_series,
    backtest_windows,
    drift_metrics,
    forecasts,
    metadata,
    model_selections,
    model_versions,
    pipeline_runs,
    schema_state,
    training_decisions,
    validation_results,
)
from pipeline_lib.db.upsert import run_in_transaction
from pipeline_lib.db.writers import (
    prune_backtest_results,
    set_model_statuses,
    upsert_model_version,
    write_actuals,
    write_backtest_results,
    write_drift_metrics,
    write_forecasts,
    write_training_decision,
)

__all__ = [
    "actuals",
    "backtest_forecasts",
    "backtest_nights",
    "backtest_results",
    "backtest_scores",
    "backtest_series",
    "backtest_windows",
    "create_schema",
    "drift_metrics",
    "driver_url",
    "engine_scope",
    "ensure_current",
    "finish_run",
    "mark_crashed",
    "forecasts",
    "make_engine",
    "metadata",
    "model_selections",
    "model_versions",
    "pipeline_runs",
    "read_backtest_summary",
    "read_forecasts",
    "read_latest_backtest",
    "run_in_transaction",
    "safe_url",
    "schema_state",
    "set_model_statuses",
    "start_run",
    "training_decisions",
    "upgrade",
    "upsert_model_version",
    "validation_results",
    "write_actuals",
    "prune_backtest_results",
    "write_backtest_results",
    "write_drift_metrics",
    "write_forecasts",
    "write_model_selections",
    "write_training_decision",
    "write_validation_results",
]
