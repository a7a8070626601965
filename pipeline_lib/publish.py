"""Write a run's results into the SQL tables BI tools read, and its summary into reports/."""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from pipeline_lib import db, paths
from pipeline_lib.model.trained import TrainedModel
from pipeline_lib.retrain import TrainingDecision
from pipeline_lib.store import atomic_write_bytes


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """A new engine for ``url``, with the schema created (idempotent); one per call."""
    engine = db.make_engine(url)
    db.create_schema(engine)
    return engine


def model_record(trained: TrainedModel, data_dir: str, status: str = "active") -> dict[str, Any]:
    return {
        "version": trained.version,
        "parent_version": trained.parent_version,
        "kind": trained.kind,
        "status": status,
        "train_start": trained.train_start,
        "train_end": trained.train_end,
        "data_fingerprint": trained.data_fingerprint,
        "hyperparameters": trained.hyperparameters,
        "metrics": trained.metrics,
        "path": paths.models_dir(data_dir) + "/" + trained.version,
    }


def publish_results(
    engine: Engine,
    data_dir: str,
    run_id: str,
    trained: TrainedModel,
    forecasts: pd.DataFrame,
    drift: pd.DataFrame,
) -> dict[str, int]:
    """Register the model and replace this run's forecast and drift rows, in ONE transaction:
    a BI query sees all of the run or none of it. Idempotent."""
    with engine.begin() as conn:
        db.upsert_model_version(conn, model_record(trained, data_dir))
        n_forecasts = db.write_forecasts(
            conn, forecasts.assign(model_version=trained.version), run_id
        )
        n_drift = db.write_drift_metrics(conn, drift, run_id)
    return {"forecasts": n_forecasts, "drift_metrics": n_drift}


def write_run_report(data_dir: str, run_id: str, as_of: dt.date, summary: dict[str, Any]) -> str:
    """The run's summary as JSON in reports/runs/ (one file per run, never overwritten)."""
    url = paths.reports_dir(data_dir, "runs", f"{as_of.isoformat()}_{run_id}.json")
    atomic_write_bytes(url, json.dumps(summary, indent=2, default=str).encode())
    return url


def run_summary(
    as_of: dt.date,
    decision: TrainingDecision,
    trained: TrainedModel,
    written: dict[str, int],
    drift: pd.DataFrame,
    forecasts: pd.DataFrame,
    series_ids: list[str],
) -> dict[str, Any]:
    """What a run did, for its report and its pipeline_runs row.

    ``unforecast_series`` lists configured series without a forecast (too little history for
    the model's look-back window), so a gap is visible rather than silent.
    """
    forecast_series = set(forecasts["series_id"]) if not forecasts.empty else set()
    flagged = drift[drift["is_drift"].astype(bool)] if not drift.empty else drift
    return {
        "as_of": as_of.isoformat(),
        "training": decision.to_dict(),
        "model_version": trained.version,
        "model_metrics": trained.metrics,
        "written": written,
        "unforecast_series": sorted(set(series_ids) - forecast_series),
        "drift_flags": int(len(flagged)),
        "drifting": sorted({f"{r.series_id}:{r.feature}" for r in flagged.itertuples()}),
    }
