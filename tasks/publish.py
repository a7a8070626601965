"""SQL and report tasks: the run record, and publishing a run's results."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline_lib import db
from pipeline_lib.config import Settings
from pipeline_lib.forecasting.champion import Evaluation
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.publishing import publish
from pipeline_lib.running.lease import Holder
from pipeline_lib.running.night import Night
from tasks.memory import RELEASE

_SQL = dict(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)


@task(name="prepare-database", **_SQL)
def prepare_database(settings: Settings) -> dict[str, Any]:
    done = publish.prepare_database(settings.db_url, settings.database_auto_upgrade)
    if done["upgraded"]:
        get_run_logger().info("database schema upgraded: %s", done)
    return done


@task(name="start-run", **_SQL)
def start_run(
    settings: Settings, run_id: str, flow: str, as_of: dt.date, details: dict[str, Any] | None
) -> None:
    with db.engine_scope(settings.db_url) as engine:
        db.start_run(engine, run_id, flow, as_of, details)


@task(name="finish-run", **_SQL)
def finish_run(
    settings: Settings, run_id: str, status: str, message: str | None, details: dict[str, Any]
) -> None:
    with db.engine_scope(settings.db_url) as engine:
        db.finish_run(engine, run_id, status, message, details)


@task(name="mark-crashed-runs", **_SQL)
def mark_crashed(settings: Settings, dead: Holder, found_by: Holder) -> list[str]:
    """The runs a holder of the writer lease left ``running`` when it died: now ``crashed``."""
    since = dt.datetime.fromisoformat(dead.since)
    message = (
        f"crashed: the process of {dead.describe()} ended without finishing the run "
        f"(found by {found_by.what}, run {found_by.run_id}, at {found_by.since})"
    )
    publish.prepare_database(settings.db_url, settings.database_auto_upgrade)
    with db.engine_scope(settings.db_url) as engine:
        return db.mark_crashed(engine, since, message)


@task(name="publish-results", **_SQL, **RELEASE)
def publish_results(
    night: Night,
    candidate: TrainedModel,
    decision: TrainingDecision,
    evaluation: Evaluation,
    forecasts: pd.DataFrame,
    drift: pd.DataFrame,
) -> dict[str, int]:
    with db.engine_scope(night.settings.db_url) as engine:
        return publish.publish_results(
            engine, night.settings, night.run_id, night.as_of, candidate, decision, evaluation,
            forecasts, drift, night.features,
        )  # fmt: skip


@task(name="prune-backtests", **_SQL)
def prune_backtests(settings: Settings, as_of: dt.date) -> int:
    """Delete the backtests dated ``backtest.keep_days`` or more before ``as_of`` (0: none);
    the nightly's step, never a backfill's (its chunks read each other's dates)."""
    keep = settings.backtest.keep_days
    if not keep:
        return 0
    before = as_of - dt.timedelta(days=keep)
    with db.engine_scope(settings.db_url) as engine:
        deleted = db.prune_backtest_results(engine, before)
    get_run_logger().info(
        "backtest_nights: %d windows named by the backtests before %s deleted (and the "
        "windows no kept night names)",
        deleted,
        before,
    )
    return deleted


@task(name="write-run-report", cache_policy=NO_CACHE)
def write_run_report(
    settings: Settings, run_id: str, as_of: dt.date, summary: dict[str, Any]
) -> str:
    return publish.write_run_report(settings.data_dir, run_id, as_of, summary)


@task(name="settle-model-statuses", **_SQL)
def settle_model_statuses(settings: Settings) -> dict[str, str]:
    with db.engine_scope(settings.db_url) as engine:
        retired = publish.settle_statuses(engine, settings)
    if retired:
        get_run_logger().info("former champions retired: %s", retired)
    return retired
