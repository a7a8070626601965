"""Publishing a run is one transaction, on SQLite and PostgreSQL: all of it or none of it.

A real night on synthetic random walks: train up to the backtest hold-out, score against the
baselines, publish forecasts (with the model of each series), backtest rows, model statuses and
drift; then a second night whose challenger is scored against the first night's champion.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

from pipeline_lib import db, paths, schema
from pipeline_lib.config import SelectionConfig, SeriesConfig, load_settings
from pipeline_lib.forecasting import champion, nightly_forecasts, registry, retrain
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.monitoring.monitor import drift_metrics
from pipeline_lib.publishing.publish import publish_results

AS_OF = dt.date(2020, 12, 31)
FEATURES = random_walk_features(n_series=2, n_days=300, start=dt.date(2020, 1, 1))


def _settings(tmp_path: Path):
    return load_settings(
        data_dir=str(tmp_path / "data"),
        horizon=3,
        series=[SeriesConfig(id="S0"), SeriesConfig(id="S1")],
        model={"lookback": 10, "hidden_size": 4, "embedding_dim": 2},
        training={"max_epochs": 2, "train_window_days": 400, "finetune_epochs": 1},
        backtest={"last_n": 5, "step": 2, "baselines": ["naive", "seasonal_naive"]},
        drift={"recent_days": 60},
    )


def _night(settings, as_of: dt.date):
    candidate, decision = retrain.train_or_reuse(settings, FEATURES, as_of)
    evaluation = champion.evaluate(settings, FEATURES, as_of, candidate, decision)
    forecasts = nightly_forecasts.published_forecasts(settings, evaluation, FEATURES, as_of)
    drift = drift_metrics(FEATURES, candidate.train_start, as_of, settings.drift)
    return candidate, decision, evaluation, forecasts, drift


def _publish(engine: Engine, settings, run_id: str, as_of: dt.date, night) -> dict[str, int]:
    """Publish a night as the forecast flow does: its run is started first."""
    candidate, decision, evaluation, forecasts, drift = night
    db.start_run(engine, run_id, "forecast", as_of)
    return publish_results(
        engine, settings, run_id, as_of, candidate, decision, evaluation, forecasts, drift,
        FEATURES,
    )  # fmt: skip


def _counts(engine: Engine) -> dict[str, int]:
    tables = (
        db.training_decisions, db.forecasts, db.drift_metrics, db.model_versions,
        db.backtest_results, db.actuals,
    )  # fmt: skip
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
        }


def test_a_night_is_published_whole_and_idempotently(db_engine: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    night = _night(settings, AS_OF)
    candidate, decision, evaluation, forecasts, drift = night
    assert decision.action == "full" and evaluation.selection.champion == candidate.version
    singles = {"lstm", "naive", "seasonal_naive"}
    assert all(m in singles or m.startswith("mean(") for m in forecasts["model"])
    assert set(forecasts["series_id"]) == {"S0", "S1"}
    combos = {v for v in forecasts["model_version"] if v.startswith("combo-")}
    db.create_schema(db_engine)
    written = _publish(db_engine, settings, "run-1", AS_OF, night)
    n_backtest = len(evaluation.rows)
    observed = FEATURES[pd.to_datetime(FEATURES["date"]).dt.date <= AS_OF]
    assert written == {
        "training_decisions": 1,
        "forecasts": 6,
        "model_selections": 4,  # 2 series x 2 horizon buckets (1, 2-3)
        "backtest_results": n_backtest,
        "drift_metrics": len(drift),
        "actuals": len(observed),  # a new table gets the whole history
    }
    rerun = _publish(db_engine, settings, "run-2", AS_OF, night)
    recent = pd.to_datetime(observed["date"]).dt.date >= AS_OF - dt.timedelta(days=31)
    assert rerun["actuals"] == recent.sum()  # then only each series' last 31 days
    assert _counts(db_engine) == {
        "training_decisions": 2,  # one per run: the decisions are an audit trail
        "forecasts": 6,
        "drift_metrics": len(drift),
        "model_versions": 3 + len(combos),  # the LSTM, two baselines, the combinations
        "backtest_results": n_backtest,
        "actuals": len(observed),
    }
    with db_engine.connect() as conn:
        statuses = dict(
            conn.execute(select(db.model_versions.c.version, db.model_versions.c.status)).all()
        )
        stored = pd.DataFrame(conn.execute(select(db.forecasts)).mappings().all())
        chosen = pd.DataFrame(conn.execute(text("SELECT * FROM forecast_choices")).mappings().all())
        accuracy = pd.DataFrame(
            conn.execute(text("SELECT * FROM backtest_accuracy")).mappings().all()
        )
        decided = conn.execute(
            select(db.training_decisions).where(db.training_decisions.c.run_id == "run-1")
        ).one()
    assert (decided.action, decided.trigger, decided.model_version) == (
        "full", "no_model", candidate.version,
    )  # fmt: skip
    assert decided.forecast_date == AS_OF and decided.reason == decision.reason
    assert not decided.drift_retrain and decided.base_version is None
    assert statuses == {
        candidate.version: "champion",
        "baseline-naive": "baseline",
        "baseline-seasonal_naive": "baseline",
    } | dict.fromkeys(combos, "combination")
    # each row says what produced it: the choice of its series and horizon bucket
    published = evaluation.selection.published
    for row in stored.itertuples():
        bucket = "1-1" if row.horizon == 1 else "2-3"
        assert row.model == published[row.series_id][bucket]
    # BI sees the rule and the evidence beside every forecast row
    assert len(chosen) == 6 and set(chosen["rule"]) == {settings.selection.rule}
    assert (chosen["model"] == chosen.merge(stored, on=["series_id", "horizon"])["model_y"]).all()
    assert chosen["evidence"].str.contains("p_worse_than_best").all()
    lstm_rows = stored[stored.model == "lstm"]
    assert (lstm_rows.model_version == candidate.version).all()
    # the BI view over backtest_results agrees with the pipeline's own summary
    summary = evaluation.summary[evaluation.summary.horizon == "ALL"]
    merged = accuracy.merge(summary, on=["model_version", "series_id"], suffixes=("", "_py"))
    assert len(merged) == len(summary) == 6
    assert merged["mase"].to_numpy() == pytest.approx(merged["mase_py"].to_numpy())
    assert merged["coverage"].to_numpy() == pytest.approx(merged["coverage_py"].to_numpy())
    models = paths.models_dir(settings.data_dir)
    selection = registry.latest_selection(models, AS_OF + dt.timedelta(days=1))
    assert selection == evaluation.selection


def test_the_next_night_contests_the_champion(db_engine: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    db.create_schema(db_engine)
    first = _night(settings, dt.date(2020, 12, 15))
    _publish(db_engine, settings, "run-1", dt.date(2020, 12, 15), first)
    night = _night(settings, AS_OF)
    candidate, decision, evaluation, forecasts, drift = night
    assert decision.action == "finetune" and decision.base_version == first[0].version
    sel = evaluation.selection
    assert sel.previous_champion == first[0].version and sel.challenger == candidate.version
    assert set(sel.mase) == {first[0].version, candidate.version}
    assert sel.champion == (candidate.version if sel.promoted else first[0].version)
    _publish(db_engine, settings, "run-2", AS_OF, night)
    with db_engine.connect() as conn:
        statuses = dict(
            conn.execute(select(db.model_versions.c.version, db.model_versions.c.status)).all()
        )
        versions = set(conn.execute(select(db.backtest_results.c.model_version)).scalars())
        errors = pd.DataFrame(conn.execute(text("SELECT * FROM forecast_errors")).mappings().all())
        accuracy = pd.DataFrame(
            conn.execute(text("SELECT * FROM forecast_accuracy")).mappings().all()
        )
        history = pd.DataFrame(conn.execute(text("SELECT * FROM model_history")).mappings().all())
    assert statuses[sel.champion] == "champion"
    loser = first[0].version if sel.promoted else candidate.version
    assert statuses[loser] == ("retired" if sel.promoted else "challenger")
    assert {first[0].version, candidate.version} <= versions
    # the first night's forecasts now have actuals: the accuracy views score them
    day = dt.date(2020, 12, 15)  # (SQLite views give dates as text)
    assert set(pd.to_datetime(errors["forecast_date"]).dt.date) == {day} and len(errors) == 6
    assert errors["abs_error"].to_numpy() == pytest.approx(
        (errors["actual"] - errors["yhat"]).abs().to_numpy()
    )
    assert sorted(accuracy["horizon"]) == [1, 1, 2, 2, 3, 3] and (accuracy["n"] == 1).all()
    assert accuracy["mae"].sum() == pytest.approx(errors["abs_error"].sum())
    first_row = history.set_index("version").loc[first[0].version]
    assert pd.Timestamp(first_row["last_backtest_date"]).date() == AS_OF
    published = history.dropna(subset=["first_forecast_date"])
    assert published["forecast_rows"].sum() == 12  # two nights of 2 series x 3 horizons


def test_failed_publish_writes_nothing(db_engine: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    candidate, decision, evaluation, forecasts, drift = _night(settings, AS_OF)
    db.create_schema(db_engine)
    broken = pd.concat([drift, drift.iloc[:1]])  # a duplicate key: the drift write must fail
    with pytest.raises(ValueError, match="duplicate keys"):
        _publish(
            db_engine,
            settings,
            "run-1",
            AS_OF,
            (candidate, decision, evaluation, forecasts, broken),
        )
    assert _counts(db_engine) == {
        "training_decisions": 0,
        "forecasts": 0,
        "drift_metrics": 0,
        "model_versions": 0,
        "backtest_results": 0,
        "actuals": 0,
    }
    models = paths.models_dir(settings.data_dir)
    assert registry.latest_selection(models, AS_OF + dt.timedelta(days=1)) is None


def test_a_choice_whose_member_gives_no_forecast_falls_back_and_says_so(
    tmp_path: Path,
) -> None:
    # the combination rule (not the default): a published mean needs every member tonight
    settings = _settings(tmp_path).model_copy(
        update={"selection": SelectionConfig(rule="combination")}
    )
    candidate, decision, evaluation, forecasts, drift = _night(settings, AS_OF)
    # three models and the mean of the best three: the LSTM is in every bucket's combination
    assert all("lstm" in c["weights"] for cs in evaluation.selection.choices.values() for c in cs)
    evaluation.champion = None  # e.g. its checkpoint became unreadable after the backtest
    published = nightly_forecasts.published_forecasts(settings, evaluation, FEATURES, AS_OF)
    assert len(published) == len(forecasts)  # every series and horizon is still published
    notes = [n for n in evaluation.notes if "gave no forecast tonight" in n]
    assert len(notes) == 4  # 2 series x 2 buckets
    for sid, choices in evaluation.selection.series_choices().items():
        for c in choices:  # the margin rule among the models that did forecast
            mase = {m: v for m, v in c.evidence["mase"].items() if m != "lstm"}
            best = min(mase, key=mase.get)
            wins = mase[best] < (1 - settings.backtest.min_improvement) * mase["naive"]
            assert c.weights == {best if wins else "naive": 1.0}
            assert c.rule == "combination+fallback"
            assert c.evidence["fallback"] == {
                "chosen": "mean(lstm,naive,seasonal_naive)",
                "missing": ["lstm"],
            }
            assert evaluation.selection.published[sid][f"{c.first}-{c.last}"] == c.label
            rows = published.loc[
                (published[schema.SERIES_ID] == sid) & published["horizon"].between(c.first, c.last)
            ]
            assert set(rows["model"]) == {c.label}
    first = evaluation.selection.series_choices()["S0"][0]
    assert notes[0] == (
        f"S0 horizons 1-1: {first.label} published instead of mean(lstm,naive,seasonal_naive): "
        "lstm gave no forecast tonight"
    )
