"""Idempotent writers, safe to rerun with the same inputs.

Each takes an Engine (the call is its own transaction) or a Connection (the call joins the
caller's transaction, so a run's writes can be published all at once).

Forecasts and drift metrics are *replaced* per (series, forecast date): a rerun deletes that
key's rows and inserts the new ones, so stale horizons or metrics never linger. Model versions
are upserts (``INSERT ... ON CONFLICT``). Only bound parameters are sent. The model selections
are written by :mod:`pipeline_lib.db.selections`, the run records and validation results by
:mod:`pipeline_lib.db.runs`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine, update

from pipeline_lib.db import values as v
from pipeline_lib.db.backtests import prune_backtest_results, write_backtest_results
from pipeline_lib.db.engine import make_engine
from pipeline_lib.db.frames import to_arrow
from pipeline_lib.db.migrate import create_schema
from pipeline_lib.db.row_checks import check_references
from pipeline_lib.db.tables import (
    MODEL_KINDS,
    TRAINING_ACTIONS,
    actuals,
    drift_metrics,
    forecasts,
    model_versions,
    training_decisions,
)
from pipeline_lib.db.upsert import BULK_ROWS, replace_rows, transaction, upsert_rows, upsert_table

__all__ = [
    "create_schema",
    "make_engine",
    "set_model_statuses",
    "upsert_model_version",
    "write_actuals",
    "prune_backtest_results",
    "write_backtest_results",
    "write_drift_metrics",
    "write_forecasts",
    "write_training_decision",
]

MODEL_VERSION_CONVERTERS: dict[str, v.Converter] = {
    "version": v.to_str,
    "parent_version": v.to_str,
    "kind": v.to_str,
    "status": v.to_str,
    "created_at": v.to_datetime_utc,
    "train_start": v.to_date,
    "train_end": v.to_date,
    "data_fingerprint": v.to_str,
    "hyperparameters": v.to_json,
    "metrics": v.to_json,
    "path": v.to_str,
}


def write_forecasts(
    bind: Engine | Connection, df: pd.DataFrame, run_id: str, bulk_rows: int = BULK_ROWS
) -> int:
    """Write forecasts, replacing the rows of every (series_id, forecast_date) in ``df``.

    ``df`` has the columns series_id, forecast_date, target_date, horizon, yhat, yhat_lower,
    yhat_upper and model_version, and optionally ``model`` (default ``lstm``). From
    ``bulk_rows`` rows PostgreSQL gets them by COPY. Returns the number of rows written.
    """
    if "model" not in df.columns:
        df = df.assign(model="lstm")
    data = to_arrow(forecasts, df, {"run_id": run_id, "created_at": v.utcnow()})
    return replace_rows(bind, forecasts, data, ["series_id", "forecast_date"], bulk_rows)


def set_model_statuses(bind: Engine | Connection, statuses: Mapping[str, str]) -> None:
    """Set ``model_versions.status`` of registered versions (LookupError for an unknown one)."""
    with transaction(bind) as conn:
        for version, status in sorted(statuses.items()):
            upsert_model_version(conn, {"version": version, "status": status})


def write_drift_metrics(
    bind: Engine | Connection, df: pd.DataFrame, run_id: str, forecast_date: dt.date | None = None
) -> int:
    """Write drift metrics, replacing the rows of every (forecast_date, series_id) in ``df``.

    ``df`` has the columns series_id, feature, metric, value, threshold, is_drift and
    forecast_date (or pass ``forecast_date`` to set it for all rows, as for the output of
    :func:`pipeline_lib.monitoring.drift.drift_table`); a missing ``is_drift`` is false. Returns the
    number of rows written.
    """
    if forecast_date is not None:
        df = df.assign(forecast_date=forecast_date)
    if "is_drift" in df.columns:
        df = df.assign(is_drift=df["is_drift"].astype("boolean").fillna(False))
    data = to_arrow(drift_metrics, df, {"run_id": run_id, "created_at": v.utcnow()})
    return replace_rows(bind, drift_metrics, data, ["forecast_date", "series_id"])


TRAINING_DECISION_CONVERTERS: dict[str, v.Converter] = {
    "forecast_date": v.to_date,
    "action": v.to_str,
    "trigger": v.to_str,
    "reason": v.to_str,
    "base_version": v.to_str,
    "model_version": v.to_str,
    "contested": bool,
    "drift_retrain": bool,
    "drifted_pairs": int,
    "decayed_series": int,
    "flags": v.to_json,
}


def write_training_decision(
    bind: Engine | Connection, record: Mapping[str, Any], run_id: str
) -> int:
    """Upsert a run's retraining decision (one row per run; ``record`` has every column of
    ``training_decisions`` but run_id and created_at; ``flags`` may be a list, stored as
    JSON text). Returns 1."""
    fields = set(TRAINING_DECISION_CONVERTERS)
    if set(record) != fields:
        raise ValueError(
            f"a training decision needs exactly {sorted(fields)}; missing "
            f"{sorted(fields - set(record))}, unknown {sorted(set(record) - fields)}"
        )
    if record["action"] not in TRAINING_ACTIONS:
        raise ValueError(f"action must be one of {TRAINING_ACTIONS}, got {record['action']!r}")
    row = {k: TRAINING_DECISION_CONVERTERS[k](val) for k, val in record.items()}
    row.update(run_id=run_id, created_at=v.utcnow())
    keys = pa.table({"run_id": [run_id], "model_version": [row["model_version"]]})
    with transaction(bind) as conn:
        check_references(conn, training_decisions, keys)
        upsert_rows(conn, training_decisions, [row])
    return 1


def write_actuals(
    bind: Engine | Connection, df: pd.DataFrame, run_id: str, bulk_rows: int = BULK_ROWS
) -> int:
    """Upsert observed targets: ``df`` has series_id, target_date and actual. A restated value
    replaces the stored one. Returns the number of rows written."""
    data = to_arrow(actuals, df, {"run_id": run_id, "updated_at": v.utcnow()})
    return upsert_table(bind, actuals, data, bulk_rows)


def upsert_model_version(bind: Engine | Connection, record: Mapping[str, Any]) -> None:
    """Insert or update one model version. On update only the keys in ``record`` change.

    A record without ``kind`` and ``status`` updates an existing version (LookupError if
    there is none). ``hyperparameters`` and ``metrics`` may be dicts (stored as JSON text);
    ``created_at`` defaults to now on insert.
    """
    unknown = sorted(set(record) - set(MODEL_VERSION_CONVERTERS))
    if unknown:
        raise ValueError(f"unknown model_versions fields {unknown}")
    if not record.get("version"):
        raise ValueError("a model version record needs a 'version'")
    if "kind" in record and record["kind"] not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {record['kind']!r}")
    row = {k: MODEL_VERSION_CONVERTERS[k](val) for k, val in record.items()}
    with transaction(bind) as conn:
        if {"kind", "status"} <= set(row):
            given = list(row)
            row.setdefault("created_at", v.utcnow())
            upsert_rows(conn, model_versions, [row], update_columns=given)
            return
        changes = {k: val for k, val in row.items() if k != "version"}
        if not changes:
            raise ValueError(f"nothing to update for model version {row['version']!r}")
        stmt = update(model_versions).where(model_versions.c.version == row["version"])
        if conn.execute(stmt.values(**changes)).rowcount == 0:
            raise LookupError(
                f"model version {row['version']!r} is not registered; a new version needs "
                "'kind' and 'status'"
            )
