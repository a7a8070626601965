"""The nightly flow: ingest, validate, store, features, train or fine-tune, forecast, drift, SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from pipeline_lib.config import load_settings
from pipeline_lib.ingest import sources_for
from pipeline_lib.publish import run_summary
from tasks.ingest import commit_curated, ingest_source, validate_batches
from tasks.model import build_features, drift_metrics, forecast, train_model
from tasks.publish import finish_run, publish_results, start_run, write_run_report


@flow(name="nightly", log_prints=True)
def nightly(
    as_of: dt.date | None = None,
    config_file: str | None = None,
    retrain: bool = False,
) -> dict[str, Any]:
    """Forecast every configured series from data dated on or before ``as_of``.

    Args:
        as_of: The forecast date; only data dated on or before it is used. Default: today.
        config_file: A TOML settings file; otherwise PIPELINE_* variables and defaults.
        retrain: Force a full retraining instead of fine-tuning the current model.
    """
    settings = load_settings(config_file)
    as_of = as_of or dt.date.today()
    run_id = str(flow_run.get_id() or f"local-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}")
    start_run(settings, run_id, "nightly", as_of)
    try:
        fetches = [ingest_source.submit(settings, src, as_of) for src in sources_for(settings)]
        batches = [f.result() for f in fetches]
        validate_batches(settings, batches, as_of)
        ingested = commit_curated(settings, batches)
        features = build_features(settings, as_of)
        trained, decision = train_model(settings, features, as_of, retrain)
        forecasts = forecast(settings, trained, features, as_of)
        drift = drift_metrics(settings, trained, features, as_of)
        written = publish_results(settings, run_id, trained, forecasts, drift)
        summary = run_summary(
            as_of, decision, trained, written, drift, ingested, forecasts, settings.series_ids
        )
        summary["report"] = write_run_report(settings, run_id, as_of, summary)
    except BaseException as exc:
        finish_run(
            settings, run_id, "failed", f"{type(exc).__name__}: {exc}", {"as_of": str(as_of)}
        )
        raise
    finish_run(settings, run_id, "succeeded", None, summary)
    return summary
