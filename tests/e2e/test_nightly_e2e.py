"""The whole pipeline on the bundled data: nightly twice for one date, then a short backfill."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine

from flows.backfill import backfill
from flows.nightly import nightly
from flows.tune import tune
from pipeline_lib.config import load_settings
from pipeline_lib.monitoring.drift import DRIFT_METRICS
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e

SERIES = ["MSFT", "NASDAQ", "SP500", "WTI"]
H = 7


def _table(db: Path, name: str) -> pd.DataFrame:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        return pd.read_sql_table(name, conn)


def _check_forecasts(fc: pd.DataFrame, forecast_date: dt.date) -> pd.DataFrame:
    day = fc[pd.to_datetime(fc["forecast_date"]).dt.date == forecast_date]
    assert len(day) == len(SERIES) * H
    assert sorted(day["series_id"].unique()) == SERIES
    for _, rows in day.groupby("series_id"):
        assert sorted(rows["horizon"]) == list(range(1, H + 1))
        assert (pd.to_datetime(rows["target_date"]).dt.date > forecast_date).all()
    assert (day["yhat_lower"] <= day["yhat"]).all() and (day["yhat"] <= day["yhat_upper"]).all()
    assert day[["yhat", "yhat_lower", "yhat_upper"]].notna().all().all()
    return day


def test_nightly_twice_then_backfill(prefect_api: None, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "pipeline.toml", data)
    db = data / "pipeline.db"
    as_of = dt.date(2015, 6, 30)

    first = nightly(as_of=as_of, config_file=str(cfg))
    assert first["training"]["action"] == "full" and first["unforecast_series"] == []
    fc1 = _check_forecasts(_table(db, "forecasts"), as_of)
    assert first["champion"] == first["model_version"] and first["champion_promoted"]
    assert set(first["published"]) == set(SERIES)
    for row in fc1.itertuples():  # each row says what produced it: its bucket's choice
        bucket = "1-1" if row.horizon == 1 else ("2-5" if row.horizon <= 5 else f"6-{H}")
        assert row.model == first["published"][row.series_id][bucket]
    lstm_rows = fc1[fc1["model"] == "lstm"]
    assert (lstm_rows["model_version"] == first["model_version"]).all()
    others = fc1.loc[fc1["model"] != "lstm"]
    prefix = np.where(others["model"].str.startswith("mean("), "combo-", "baseline-")
    assert all(v.startswith(p) for v, p in zip(others["model_version"], prefix, strict=True))
    backtest = _table(db, "backtest_results")
    assert set(backtest["model"]) == {"lstm", "naive", "seasonal_naive", "linear", "ets", "arima"}
    assert set(backtest["series_id"]) == set(SERIES)
    assert (pd.to_datetime(backtest["target_date"]).dt.date <= as_of).all()
    holdout = dt.date.fromisoformat(first["backtest"]["holdout_start"])
    assert (pd.to_datetime(backtest["forecast_date"]).dt.date >= holdout).all()
    drift1 = _table(db, "drift_metrics")
    assert len(drift1) > 0 and set(drift1["series_id"]) == set(SERIES)
    assert set(DRIFT_METRICS) <= set(drift1["metric"])  # input drift; decay rows may join
    assert drift1["is_drift"].isin([True, False]).all()

    published = _table(db, "forecasts")
    second = nightly(as_of=as_of, config_file=str(cfg))
    # a rerun with nothing new answers from the first run: nothing trained, scored or written
    runs = _table(db, "pipeline_runs").sort_values("started_at")
    assert list(runs["flow"]) == ["ingest", "forecast"] * 2
    assert (runs["status"] == "succeeded").all()
    forecast_runs = runs.loc[runs["flow"] == "forecast", "run_id"]
    assert second["reused"]["run_id"] == forecast_runs.iloc[0]
    assert second["training"] == first["training"]
    assert second["model_version"] == first["model_version"]
    fc2 = _table(db, "forecasts")
    pd.testing.assert_frame_equal(fc2, published)  # the first run's rows, not rewritten
    merged = fc1.merge(fc2, on=["series_id", "forecast_date", "target_date"], suffixes=("", "_2"))
    assert len(merged) == len(fc1) == len(fc2) and (merged["yhat"] == merged["yhat_2"]).all()
    assert len(_table(db, "drift_metrics")) == len(drift1)
    checks = _table(db, "validation_results")  # every batch of every ingest run, empty ones too
    ingest_runs = runs.loc[runs["flow"] == "ingest", "run_id"]
    assert set(checks["run_id"]) == set(ingest_runs)
    assert len(checks) == 2 * (len(SERIES) + 1) and checks["success"].all()
    assert (data / "reports" / "data_docs" / "index.html").is_file()

    done = backfill(start=dt.date(2015, 7, 1), end=dt.date(2015, 7, 3), config_file=str(cfg))
    summaries = done["results"]
    # the NYSE's sessions: 3 July 2015 (a holiday) is no forecast date
    assert [s["as_of"] for s in summaries] == ["2015-07-01", "2015-07-02"]
    # one chunk (cadence 28 days): it continues the nightly's champion
    assert [s["training"] for s in summaries] == ["finetune", "finetune"]
    # every forecast run's decision is a row, with what triggered it and the policy's counts
    decisions = _table(db, "training_decisions").sort_values("created_at")
    assert list(decisions["action"]) == ["full", "finetune", "finetune"]
    assert list(decisions["trigger"]) == ["no_model", "routine", "routine"]
    assert forecast_runs.iloc[1] not in set(decisions["run_id"])  # the rerun decided nothing
    assert forecast_runs.iloc[0] in set(decisions["run_id"])
    assert (decisions["drifted_pairs"] >= 0).all() and decisions["reason"].str.len().gt(0).all()

    fc = _table(db, "forecasts")
    assert not fc.duplicated(["series_id", "forecast_date", "target_date"]).any()
    assert len(fc) == 3 * len(SERIES) * H
    for day in (dt.date(2015, 7, 1), dt.date(2015, 7, 2)):
        _check_forecasts(fc, day)
    # the forecast published as of 30 June is untouched by the later dates (point in time)
    again = fc[pd.to_datetime(fc["forecast_date"]).dt.date == as_of]
    assert sorted(again["yhat"]) == sorted(fc1["yhat"])

    models = _table(db, "model_versions").set_index("version")
    tuned = models[models["kind"] == "finetune"]
    assert len(tuned) == 2 and tuned["parent_version"].notna().all()
    assert set(tuned["parent_version"]) <= set(models.index)

    assert (models.loc[models["kind"] == "baseline", "status"] == "baseline").all()
    assert (models["status"] == "champion").sum() == 1
    champion = summaries[-1]["champion"]
    assert models.loc[champion, "status"] == "champion"
    assert json.loads(models.loc[champion, "metrics"])["backtest"]["mase"] > 0
    selections = sorted(p.stem for p in (data / "models" / "selections").glob("*.json"))
    assert selections == ["2015-06-30", "2015-07-01", "2015-07-02"]
    backtest_dates = set(pd.to_datetime(_table(db, "backtest_results")["backtest_date"]).dt.date)
    assert backtest_dates == {as_of, dt.date(2015, 7, 1), dt.date(2015, 7, 2)}

    latest = _table(db, "latest_forecasts")
    assert not latest.duplicated(["series_id", "target_date"]).any()
    # actuals arrive with each night; the accuracy views score what was forecast before
    observed = _table(db, "actuals")
    assert not observed.duplicated(["series_id", "target_date"]).any()
    assert set(observed["series_id"]) == set(SERIES)
    newest = pd.to_datetime(observed["target_date"]).dt.date.max()
    assert dt.date(2015, 7, 2) <= newest <= dt.date(2015, 7, 3)
    errors = _table(db, "forecast_errors")
    assert as_of in set(pd.to_datetime(errors["forecast_date"]).dt.date)
    assert (pd.to_datetime(errors["target_date"]).dt.date <= newest).all()
    assert len(_table(db, "forecast_accuracy")) > 0

    # rerunning the backfill changes nothing
    backfill(start=dt.date(2015, 7, 1), end=dt.date(2015, 7, 3), config_file=str(cfg))
    assert len(_table(db, "forecasts")) == len(fc)
    assert len(_table(db, "model_versions")) == len(models)

    curated = pd.read_parquet(data / "curated" / "prices")
    assert not curated.duplicated(["series_id", "date"]).any()
    settings = load_settings(cfg)
    assert settings.data_dir == str(data)

    # a hyper-parameter search; the next night trains its best configuration in full
    study = tune(as_of=dt.date(2015, 7, 2), config_file=str(cfg), n_trials=2)
    assert study["n_trials"] == 2 and study["best"]["mase"] > 0
    after = nightly(as_of=dt.date(2015, 7, 6), config_file=str(cfg))
    assert after["training"]["action"] == "full" and not after["training"]["contest"]
    assert "model settings changed" in after["training"]["reason"]
    best = study["best"]["params"]
    trained = json.loads((data / "models" / after["model_version"] / "metadata.json").read_text())[
        "hyperparameters"
    ]
    assert (trained["lookback"], trained["hidden_size"]) == (best["lookback"], best["hidden_size"])
    assert after["champion"] == after["model_version"]
    assert any((data / "raw").rglob("*.csv")) and any((data / "models").glob("*/model.safetensors"))
