"""The forecast stage flow: features, drift and decay against the current model (the
retraining policy's input), train or fine-tune, backtest against the champion and the
baselines, forecast from the winners, prediction drift, publish to SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.utilities.urls import url_for

from flows.opaque import opaque
from flows.parallel import baselines_apart
from flows.runs import recorded_run
from pipeline_lib.config import load_settings
from pipeline_lib.publishing.publish import run_summary
from pipeline_lib.running.backfill import scoped_settings
from pipeline_lib.running.night import Night
from pipeline_lib.running.rerun import STATE
from tasks.artifacts import publish_forecast_artifacts
from tasks.model import (
    backtest,
    build_features,
    drift_metrics,
    forecast,
    models_situation,
    monitor_drift,
    night_done,
    night_state,
    train_model,
    tuned_settings,
)
from tasks.publish import publish_results, write_run_report


@flow(name="forecast", flow_run_name="forecast-{as_of}", log_prints=True)
def forecast_stage(
    as_of: dt.date,
    config_file: str | None = None,
    retrain: bool = False,
    series: list[str] | None = None,
    lineage_start: dt.date | None = None,
    refresh_features: bool = True,
) -> dict[str, Any]:
    """Forecast every configured series from curated data dated on or before ``as_of``.

    A rerun of a night already done from the same settings, curated data and models (nothing
    new since, no other night in between) is answered from the run that did the work
    (``pipeline_lib.running.rerun``): its summary, with ``reused`` naming it; nothing is written
    again.

    Args:
        as_of: The forecast date; only data dated on or before it is used.
        config_file: A TOML settings file; otherwise PIPELINE_* variables and defaults.
        retrain: Force a full retraining instead of fine-tuning the current model.
        series: Only these series (a backfill's subset); default every configured one.
        lineage_start: Only models chosen from this date on count (a backfill's chunk).
        refresh_features: Rebuild the stored features first (a backfill does it once).
    """
    settings = scoped_settings(load_settings(config_file), series)
    with recorded_run(settings, "forecast", as_of) as run:
        settings = tuned_settings(settings, as_of)
        done = night_done(settings, as_of, lineage_start, retrain)
        if done is not None:  # the same inputs as the run that made tonight's forecasts
            run.details = done
            return run.details
        features = build_features(settings, as_of, refresh_features)
        models = models_situation(settings, features, as_of, lineage_start)
        night = Night(settings, as_of, run.id, features, models, lineage_start)
        tonight = opaque(night)  # as every task's argument: not walked by Prefect (every model)
        monitoring, verdict = monitor_drift(tonight)
        candidate, decision = train_model(tonight, retrain, verdict)
        apart = baselines_apart(night)  # None: in the backtest task
        evaluation = backtest(tonight, candidate, decision, apart)
        scored = opaque(evaluation)  # every model's backtest: not walked by Prefect
        forecasts = forecast(tonight, scored)
        drift = drift_metrics(tonight, monitoring, forecasts)
        written = publish_results(tonight, candidate, decision, scored, forecasts, drift)
        plot = publish_forecast_artifacts(tonight, forecasts, decision, scored, drift)
        run.details = run_summary(
            as_of, decision, candidate, evaluation, written, drift, forecasts, settings.series_ids
        )
        run.details["plot"] = plot
        # the run's page in the UI, with this date's artifacts (the URL Prefect itself logs)
        run.details["run_url"] = url_for("flow-run", obj_id=run.id)
        run.details["report"] = write_run_report(settings, run.id, as_of, run.details)
        run.details[STATE] = night_state(settings, as_of, lineage_start)
    return run.details
