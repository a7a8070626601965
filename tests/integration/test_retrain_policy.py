"""Planted drift drives the retraining: nights run as the forecast flow runs them (monitoring
against the current model, the policy's verdict, train or fine-tune, publish), with real
training on synthetic random walks and a SQLite database.

A series whose daily log-return mean moves by one std in the recent window is flagged and the
next night trains in full (trigger ``drift``); the same data without the shift fine-tunes. The
flag persists, but a later night does not retrain for it again: the full training recorded it.
The false-alarm rate over many seeds is measured by ``bench/drift_false_alarms.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from pipeline_lib import db, paths
from pipeline_lib.config import SeriesConfig, load_settings
from pipeline_lib.forecasting import champion, nightly_forecasts, retrain, situation
from pipeline_lib.forecasting.model.checkpoint import list_models
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.publishing.publish import publish_results

FIRST = dt.date(2020, 12, 31)  # the first night: no model yet, a full training
SECOND = dt.date(2021, 2, 12)  # past the 7-day cooldown, before the 60-day cadence
THIRD = dt.date(2021, 2, 24)  # 12 days after the second: past the cooldown again
SHIFT_FROM = dt.date(2021, 1, 4)  # the planted shift: after the first night, inside the
# second night's 60-day window


def _settings(tmp_path: Path):
    return load_settings(
        data_dir=str(tmp_path / "data"),
        horizon=3,
        series=[SeriesConfig(id="S0"), SeriesConfig(id="S1")],
        model={"lookback": 10, "hidden_size": 4, "embedding_dim": 2},
        training={
            "max_epochs": 2,
            "train_window_days": 400,
            "finetune_epochs": 1,
            "retrain_every_days": 60,
        },  # fmt: skip
        backtest={"last_n": 5, "step": 2, "baselines": ["naive"]},
        drift={"recent_days": 60},
    )


def _night(settings, features: pd.DataFrame, as_of: dt.date, run_id: str):
    """One night as flows/forecast.py runs it."""
    with db.engine_scope(settings.db_url) as engine:
        db.create_schema(engine)
        now = situation.situation(settings, features, as_of)
        monitoring, verdict = retrain.monitor_night(settings, engine, now, as_of)
        candidate, decision = retrain.train_or_reuse(
            settings, features, as_of, drift=verdict, now=now
        )
        evaluation = champion.evaluate(settings, features, as_of, candidate, decision)
        forecasts = nightly_forecasts.published_forecasts(settings, evaluation, features, as_of)
        db.start_run(engine, run_id, "forecast", as_of)
        publish_results(
            engine, settings, run_id, as_of, candidate, decision, evaluation, forecasts,
            monitoring.rows, features,
        )  # fmt: skip
        with engine.connect() as conn:
            t = db.training_decisions
            row = conn.execute(select(t).where(t.c.run_id == run_id)).one()
    return monitoring, decision, row


@pytest.mark.parametrize("shift", [0.0, 0.01], ids=["stationary", "mean-shift"])
def test_a_planted_shift_triggers_the_full_retraining(tmp_path: Path, shift: float) -> None:
    features = random_walk_features(
        n_series=2, n_days=440, start=dt.date(2019, 7, 1), seed=3,
        shift_series=(1,), shift_from=SHIFT_FROM, shift_mean=shift,
    )  # fmt: skip
    settings = _settings(tmp_path)

    _, first, _ = _night(settings, features[features["date"] <= pd.Timestamp(FIRST)], FIRST, "n1")
    assert (first.action, first.trigger) == ("full", "no_model")

    upto_second = features[features["date"] <= pd.Timestamp(SECOND)]
    monitoring, decision, row = _night(settings, upto_second, SECOND, "night-2")
    trained_first = [m for m in list_models(paths.models_dir(settings.data_dir))][0]
    assert monitoring.model_version == trained_first["version"]  # the reference window's model
    flags = monitoring.rows[
        (monitoring.rows["feature"] == "log_return") & monitoring.rows["is_drift"].astype(bool)
    ]
    if shift == 0.0:
        assert set(flags["series_id"]) <= {"S0", "S1"} and len(flags) < 3
        assert (decision.action, decision.trigger) == ("finetune", "routine")
        assert not decision.drift.retrain and decision.drift.drifted == []
        assert (row.action, row.trigger, row.drift_retrain, row.drifted_pairs) == (
            "finetune", "routine", False, 0,
        )  # fmt: skip
    else:
        assert set(flags["series_id"]) == {"S1"} and len(flags) >= 3  # metrics agree
        assert (decision.action, decision.trigger) == ("full", "drift")
        assert decision.contest and decision.base_version == monitoring.model_version
        assert [f.series_id for f in decision.drift.drifted] == ["S1"]
        assert decision.reason.startswith("new input drift on 1 watched (series, feature)")
        assert (row.action, row.trigger, row.drift_retrain, row.drifted_pairs) == (
            "full", "drift", True, 1,
        )  # fmt: skip
        assert '"series_id": "S1"' in row.flags and '"feature": "log_return"' in row.flags

        # 12 days on the shift is still flagged, but the full training recorded it: no retrain
        third, decided, _ = _night(settings, features, THIRD, "night-3")
        assert [(f.series_id, f.new) for f in decided.drift.drifted] == [("S1", False)]
        assert (decided.action, decided.trigger) == ("finetune", "routine")
        assert "1 flag(s) already present at the last full training" in decided.reason
