"""The monitoring stage against SQL, on SQLite and PostgreSQL: published forecasts whose target
date has passed are scored against the backtest of a real night, and every row reaches
drift_metrics with its threshold and flag."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from pipeline_lib import db, schema
from pipeline_lib.config import SeriesConfig, load_settings
from pipeline_lib.forecasting import champion, nightly_forecasts, retrain
from pipeline_lib.forecasting.backtest import baseline_version
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.monitoring import monitor, policy
from pipeline_lib.publishing.publish import publish_results

FEATURES = random_walk_features(n_series=2, n_days=300, start=dt.date(2020, 1, 1))
BACKTESTED = dt.date(2020, 7, 31)  # a real night: its backtest is the reference
AS_OF = pd.Timestamp(FEATURES[schema.DATE].max()).date()


def _settings(tmp_path: Path):
    return load_settings(
        data_dir=str(tmp_path / "data"),
        horizon=3,
        series=[SeriesConfig(id="S0"), SeriesConfig(id="S1")],
        model={"lookback": 10, "hidden_size": 4, "embedding_dim": 2},
        training={"max_epochs": 2, "train_window_days": 400, "finetune_epochs": 1},
        backtest={"last_n": 20, "step": 1, "baselines": ["naive", "seasonal_naive"]},
        drift={"recent_days": 60},
    )


def _naive_forecasts(bias_sigmas: float) -> pd.DataFrame:
    """Naive forecasts with 80% intervals of a random walk (daily sigma 1% of the level) for
    every business day after the backtested night, shifted by ``bias_sigmas``."""
    rows = []
    for sid, frame in FEATURES.groupby(schema.SERIES_ID):
        frame = frame.set_index(schema.DATE)
        dates = [d for d in frame.index if BACKTESTED < d.date() < AS_OF]
        for d in dates:
            level = float(frame.loc[d, schema.Y])
            for h in (1, 2, 3):
                sigma = 0.01 * level * np.sqrt(h)
                yhat = level + bias_sigmas * sigma
                rows.append(
                    {
                        "series_id": sid,
                        "forecast_date": d.date(),
                        "target_date": (d + pd.offsets.BDay(h)).date(),
                        "horizon": h,
                        "yhat": yhat,
                        "yhat_lower": yhat - 1.2816 * sigma,
                        "yhat_upper": yhat + 1.2816 * sigma,
                        "model": "naive",
                        "model_version": baseline_version("naive"),
                    }
                )
    return pd.DataFrame(rows)


def _monitor(engine: Engine, settings, train_start: dt.date) -> pd.DataFrame:
    published = db.read_forecasts(engine, settings.series_ids, train_start, AS_OF)
    backtest = db.read_latest_backtest(engine, settings.series_ids, AS_OF)
    assert set(backtest["backtest_date"]) == {BACKTESTED}
    tonight = published.loc[published["forecast_date"] == published["forecast_date"].max()]
    before = monitor.before_training(
        FEATURES, published, backtest, train_start, AS_OF, settings.drift,
        list(settings.model.quantiles),
    )  # fmt: skip
    return monitor.with_predictions(before, tonight, settings.drift)


def _value(rows: pd.DataFrame, sid: str, metric: str) -> pd.Series:
    return rows.loc[
        (rows["series_id"] == sid) & (rows["feature"] == "forecast_error")
        & (rows["metric"] == metric)
    ].iloc[0]  # fmt: skip


def test_decay_of_published_forecasts_reaches_drift_metrics(
    db_engine: Engine, tmp_path: Path
) -> None:
    db.create_schema(db_engine)
    settings = _settings(tmp_path)
    candidate, decision = retrain.train_or_reuse(settings, FEATURES, BACKTESTED)
    evaluation = champion.evaluate(settings, FEATURES, BACKTESTED, candidate, decision)
    forecasts = nightly_forecasts.published_forecasts(settings, evaluation, FEATURES, BACKTESTED)
    db.start_run(db_engine, "night", "forecast", BACKTESTED)
    empty = pd.DataFrame(columns=[*monitor.DRIFT_COLUMNS, "forecast_date"])
    publish_results(
        db_engine, settings, "night", BACKTESTED, candidate, decision, evaluation, forecasts,
        empty, FEATURES,
    )  # fmt: skip
    db.start_run(db_engine, "live", "forecast", AS_OF)

    # honest naive forecasts: as good as the naive model's backtest, intervals about right
    db.write_forecasts(db_engine, _naive_forecasts(0.0), "live")
    honest = _monitor(db_engine, settings, candidate.train_start)
    for sid in ("S0", "S1"):
        assert _value(honest, sid, "n_realised")["value"] >= 30
        assert 0.5 < _value(honest, sid, "mase_ratio")["value"] < 2.0
        assert abs(_value(honest, sid, "coverage_gap")["value"]) < 0.25
    assert {"psi", "mean_shift", "mase_ratio", "coverage_gap"} <= set(honest["metric"])
    assert "prediction" in set(honest["feature"])

    # the same forecasts, 3 sigmas off: decay is flagged on both counts
    db.write_forecasts(db_engine, _naive_forecasts(3.0), "live")
    decayed = _monitor(db_engine, settings, candidate.train_start)
    for sid in ("S0", "S1"):
        ratio = _value(decayed, sid, "mase_ratio")
        assert ratio["value"] > settings.drift.mase_ratio_threshold and ratio["is_drift"]
        gap = _value(decayed, sid, "coverage_gap")
        assert gap["value"] < -settings.drift.coverage_gap_threshold and gap["is_drift"]

    # the retraining policy counts both series as decayed: a full retraining is due
    assert policy.assess(honest, settings.retrain_policy).decayed == []
    verdict = policy.assess(decayed, settings.retrain_policy)
    assert [f.series_id for f in verdict.decayed] == ["S0", "S1"]
    assert verdict.retrain and "decay" in verdict.trigger.split("+")
    assert set(verdict.decayed[0].metrics) == {"mase_ratio", "coverage_gap"}

    # every row is stored with its threshold (NULL for descriptive rows) and flag
    assert db.write_drift_metrics(db_engine, decayed, "live") == len(decayed)
    t = db.drift_metrics
    with db_engine.connect() as conn:
        stored = pd.DataFrame(conn.execute(select(t).where(t.c.run_id == "live")).mappings())
    assert len(stored) == len(decayed)
    flagged = stored.loc[stored["feature"] == "forecast_error"]
    assert flagged.loc[flagged["metric"] == "mase_ratio", "is_drift"].astype(bool).all()
    assert flagged.loc[flagged["metric"] == "n_realised", "threshold"].isna().all()
