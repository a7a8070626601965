"""Write a run's results into the SQL tables BI tools read, and its summary into reports/."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Engine

from pipeline_lib import db, paths
from pipeline_lib.config import Settings
from pipeline_lib.forecasting import evaluation_record, registry
from pipeline_lib.forecasting.champion import Evaluation
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.forecasting.selection_records import (
    baseline_records,
    combination_records,
    selection_records,
)
from pipeline_lib.schema import DATE, SERIES_ID, Y
from pipeline_lib.store import atomic_write_bytes


def prepare_database(url: str, auto_upgrade: bool = True) -> dict[str, Any]:
    """Make sure the schema is current before a run writes (upgrading it unless told not to);
    what was done, for the run's log."""
    with db.engine_scope(url) as engine:
        result = db.ensure_current(engine, auto_upgrade=auto_upgrade)
    if result is None:
        return {"upgraded": False}
    return {
        "upgraded": True,
        "from_revision": result.from_revision,
        "to_revision": result.to_revision,
        "recognised_as": result.stamped,
        "views_replaced": result.views_replaced,
    }


def actuals_frame(
    conn: Connection, features: pd.DataFrame, as_of: dt.date, restate_days: int
) -> pd.DataFrame:
    """The observed targets to (re)write tonight: per series, every date from ``restate_days``
    before its newest stored actual (all of them for a series with none), up to ``as_of``, so
    late corrections of recent days reach the table without rewriting the whole history."""
    table = db.actuals
    newest = dict(
        conn.execute(
            select(table.c.series_id, func.max(table.c.target_date)).group_by(table.c.series_id)
        ).all()
    )
    df = features.loc[features[Y].notna(), [SERIES_ID, DATE, Y]]
    dates = pd.to_datetime(df[DATE]).dt.date
    cutoffs = {s: d - dt.timedelta(days=restate_days) for s, d in newest.items()}
    since = df[SERIES_ID].map(cutoffs).fillna(dt.date.min)
    keep = (dates >= since) & (dates <= as_of)
    return df.loc[keep].rename(columns={DATE: "target_date", Y: "actual"})


def model_record(
    trained: TrainedModel, data_dir: str, status: str, backtest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``model_versions`` row of an LSTM version: lineage, training window and metrics
    (``training``: the fit's figures; ``backtest``: the contest it was scored in)."""
    metrics: dict[str, Any] = {"training": trained.metrics}
    if backtest is not None:
        metrics["backtest"] = backtest
    return {
        "version": trained.version,
        "parent_version": trained.parent_version,
        "kind": trained.kind,
        "status": status,
        "train_start": trained.train_start,
        "train_end": trained.train_end,
        "data_fingerprint": trained.data_fingerprint,
        "hyperparameters": trained.hyperparameters,
        "metrics": metrics,
        "path": paths.models_dir(data_dir) + "/" + trained.version,
    }


def decision_record(
    decision: TrainingDecision, as_of: dt.date, model_version: str
) -> dict[str, Any]:
    """The ``training_decisions`` row of a run (less run_id and created_at)."""
    verdict = decision.drift
    flags = [] if verdict is None else [asdict(f) for f in (*verdict.drifted, *verdict.decayed)]
    return {
        "forecast_date": as_of,
        "action": decision.action,
        "trigger": decision.trigger,
        "reason": decision.reason,
        "base_version": decision.base_version,
        "model_version": model_version,
        "contested": decision.contest,
        "drift_retrain": bool(verdict and verdict.retrain),
        "drifted_pairs": len(verdict.drifted) if verdict else 0,
        "decayed_series": len(verdict.decayed) if verdict else 0,
        "flags": flags,
    }


def publish_results(
    engine: Engine,
    settings: Settings,
    run_id: str,
    as_of: dt.date,
    candidate: TrainedModel,
    decision: TrainingDecision,
    evaluation: Evaluation,
    forecasts: pd.DataFrame,
    drift: pd.DataFrame,
    features: pd.DataFrame,
) -> dict[str, int]:
    """Register the models, set their champion/challenger status and write tonight's
    training decision, forecasts, backtest rows, drift metrics and actuals, in ONE transaction
    (retried whole on a deadlock): a BI query sees all of the run or none of it. Then record
    the night's selection in the model folder, with the windows it added to the evaluation
    record (whose files older than twice its reach go). Idempotent."""
    selection = evaluation.selection
    statuses = selection.statuses()

    def write(conn: Connection) -> dict[str, int]:
        for record in [*baseline_records(settings), *combination_records(selection)]:
            db.upsert_model_version(conn, record)
        known = {r[0] for r in conn.execute(select(db.model_versions.c.version))}
        champion = evaluation.champion
        if champion is not None and champion.version not in known:  # e.g. a new database
            db.upsert_model_version(conn, model_record(champion, settings.data_dir, "champion"))
            known.add(champion.version)
        db.upsert_model_version(
            conn,
            model_record(
                candidate,
                settings.data_dir,
                statuses.get(candidate.version, "challenger"),
                evaluation.model_metrics(candidate.version),
            ),
        )
        known.add(candidate.version)
        db.set_model_statuses(conn, {v: s for v, s in statuses.items() if v in known})
        observed = actuals_frame(conn, features, as_of, settings.actuals_restate_days)
        record = decision_record(decision, as_of, candidate.version)
        return {
            "training_decisions": db.write_training_decision(conn, record, run_id),
            "forecasts": db.write_forecasts(conn, forecasts, run_id),
            "model_selections": db.write_model_selections(
                conn, selection_records(selection), run_id
            ),
            "backtest_results": db.write_backtest_results(
                conn, evaluation.rows, run_id, as_of, series_ids=settings.series_ids
            ),
            "drift_metrics": db.write_drift_metrics(conn, drift, run_id),
            "actuals": db.write_actuals(conn, observed, run_id),
        }

    written = db.run_in_transaction(engine, write)
    models = paths.models_dir(settings.data_dir)
    registry.save_selection(models, selection, settings.lineage)
    if settings.selection.record_windows:  # the record's files: twice what a night reads
        keep = dt.timedelta(days=2 * evaluation_record.reach(settings))
        evaluation_record.prune(models, as_of - keep, settings.lineage)
    return written


def settle_statuses(engine: Engine, settings: Settings) -> dict[str, str]:
    """After a backfill: one ``champion`` per lineage, the champion of its newest selection.

    Any other LSTM marked ``champion`` becomes ``retired``: a later chunk of a backfill starts
    a lineage of its own, and a backfill over dates another one already ran replaces its
    selections, so nothing else retires those champions. Returns what changed."""
    url = paths.models_dir(settings.data_dir)
    newest = [
        registry.latest_selection(url, dt.date.max, lineage=n) for n in registry.lineages(url)
    ]
    keep = {s.champion for s in newest if s and s.champion}
    if not keep:  # no selection at all: nothing to settle against
        return {}

    def settle(conn: Connection) -> dict[str, str]:
        t = db.model_versions
        marked = conn.execute(select(t.c.version).where(t.c.status == "champion")).scalars()
        retire = {v: "retired" for v in marked if v not in keep}
        db.set_model_statuses(conn, retire)
        return retire

    return db.run_in_transaction(engine, settle)


def write_run_report(data_dir: str, run_id: str, as_of: dt.date, summary: dict[str, Any]) -> str:
    """The run's summary as JSON in reports/runs/ (one file per run, never overwritten)."""
    url = paths.reports_dir(data_dir, "runs", f"{as_of.isoformat()}_{run_id}.json")
    atomic_write_bytes(url, json.dumps(summary, indent=2, default=str).encode())
    return url


def run_summary(
    as_of: dt.date,
    decision: TrainingDecision,
    candidate: TrainedModel,
    evaluation: Evaluation,
    written: dict[str, int],
    drift: pd.DataFrame,
    forecasts: pd.DataFrame,
    series_ids: list[str],
) -> dict[str, Any]:
    """What a run did, for its report and its pipeline_runs row.

    ``unforecast_series`` lists configured series without a forecast (too little history for
    a backtest), so a gap is visible rather than silent; ``published`` says which model each
    series' forecast came from.
    """
    forecast_series = set(forecasts["series_id"]) if not forecasts.empty else set()
    flagged = drift[drift["is_drift"].astype(bool)] if not drift.empty else drift
    selection = evaluation.selection
    champion = evaluation.champion
    return {
        "as_of": as_of.isoformat(),
        "training": decision.to_dict(),
        "model_version": candidate.version,
        "model_metrics": {k: v for k, v in candidate.metrics.items() if k != "history"},
        "champion": selection.champion,
        "champion_promoted": selection.promoted,
        "selection_reason": selection.reason,
        "published": selection.published,
        "backtest": {
            "holdout_start": str(evaluation.plan.holdout_start),
            "windows": evaluation.plan.n_windows,
            "series_mase": selection.series_mase,
            "notes": evaluation.notes,
        },
        "champion_target_end": champion.target_end.isoformat() if champion else None,
        "written": written,
        "unforecast_series": sorted(set(series_ids) - forecast_series),
        "drift_flags": int(len(flagged)),
        "drifting": sorted({f"{r.series_id}:{r.feature}" for r in flagged.itertuples()}),
    }
