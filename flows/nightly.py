"""The nightly flow: ingest new data, then forecast from everything dated on or before as_of."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.forecast import forecast_stage
from flows.ingest import ingest
from flows.slot import exclusive
from flows.subflows import on_parent_heartbeat
from pipeline_lib.config import load_settings
from pipeline_lib.running.backfill import today_in
from tasks.publish import prune_backtests


def night_name() -> str:
    """``nightly-<forecast date>`` (a scheduled run's date: today in the schedules' zone)."""
    parameters = flow_run.parameters
    as_of = parameters.get("as_of")
    if as_of is None:
        zone = load_settings(parameters.get("config_file") or None).orchestration.timezone
        as_of = today_in(zone)
    return f"nightly-{as_of}"


@flow(name="nightly", flow_run_name=night_name, log_prints=True)
def nightly(
    as_of: dt.date | None = None,
    config_file: str = "",
    retrain: bool = False,
) -> dict[str, Any]:
    """Ingest, validate, store, features, train or fine-tune, forecast, drift, SQL; then the
    backtests older than ``backtest.keep_days`` go.

    Args:
        as_of: The forecast date; only data dated on or before it is used. Default: today in
            the schedules' time zone (``orchestration.timezone``).
        config_file: A TOML settings file; empty: PIPELINE_* variables (PIPELINE_CONFIG) and
            defaults.
        retrain: Force a full retraining instead of fine-tuning the current model.
    """
    config = config_file or None
    settings = load_settings(config)
    as_of = as_of or today_in(settings.orchestration.timezone)
    with exclusive(settings, f"nightly {as_of}"), on_parent_heartbeat():
        ingested = ingest(as_of=as_of, config_file=config)
        summary = forecast_stage(as_of=as_of, config_file=config, retrain=retrain)
        pruned = prune_backtests(settings, as_of)
    return {
        **summary,
        "backtest_rows_pruned": pruned,
        "ingested_rows": ingested["rows"],
        "ingest_warnings": ingested["warnings"],
        "ingest_notes": ingested["notes"],
    }
