"""Publishing a run is one transaction, on SQLite and PostgreSQL: all of it or none of it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from pipeline_lib import db
from pipeline_lib.config import DriftConfig, ModelConfig, TrainingConfig
from pipeline_lib.model.forecast import predict
from pipeline_lib.model.testing import random_walk_features
from pipeline_lib.model.train import train_full
from pipeline_lib.monitor import drift_metrics
from pipeline_lib.publish import publish_results

AS_OF = dt.date(2020, 12, 31)


@pytest.fixture(scope="module")
def run_outputs():
    feats = random_walk_features(n_series=2, n_days=300, start=dt.date(2020, 1, 1))
    trained = train_full(
        feats,
        ModelConfig(lookback=10, hidden_size=4, embedding_dim=2),
        TrainingConfig(max_epochs=1, train_window_days=400),
        horizon=3,
        train_end=AS_OF,
    )
    forecasts = predict(trained, feats, AS_OF, {"S0": "B", "S1": "B"})
    drift = drift_metrics(feats, trained.train_start, AS_OF, DriftConfig(recent_days=60))
    return trained, forecasts, drift


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (db.forecasts, db.drift_metrics, db.model_versions)
        }


def test_publish_is_idempotent(db_engine: Engine, run_outputs, tmp_path: Path) -> None:
    trained, forecasts, drift = run_outputs
    db.create_schema(db_engine)
    written = publish_results(db_engine, str(tmp_path), "run-1", trained, forecasts, drift)
    assert written == {"forecasts": 6, "drift_metrics": len(drift)} and len(drift) > 0
    publish_results(db_engine, str(tmp_path), "run-2", trained, forecasts, drift)
    assert _counts(db_engine) == {"forecasts": 6, "drift_metrics": len(drift), "model_versions": 1}


def test_failed_publish_writes_nothing(db_engine: Engine, run_outputs, tmp_path: Path) -> None:
    trained, forecasts, drift = run_outputs
    db.create_schema(db_engine)
    broken = pd.concat([drift, drift.iloc[:1]])  # a duplicate key: the drift write must fail
    with pytest.raises(ValueError, match="duplicate key"):
        publish_results(db_engine, str(tmp_path), "run-1", trained, forecasts, broken)
    assert _counts(db_engine) == {"forecasts": 0, "drift_metrics": 0, "model_versions": 0}
