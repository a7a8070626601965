"""Run artifacts in Prefect: forecasts, the training decision, backtest and drift as markdown,
the forecast plot as an image shown in the run page (served from the reports folder, see
``pipeline_lib.api.links.report_link``), the validation summary, and a backfill's summary.

Keys are fixed (lowercase letters, digits and dashes, as Prefect requires), so each key's
history in the UI is one artifact per run; every artifact is also attached to its flow run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipeline_lib.api.links import report_link
from pipeline_lib.config import Settings
from pipeline_lib.forecasting.champion import Evaluation
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.publishing import artifacts, plot
from pipeline_lib.publishing.backfill_summary import backfill_summary_markdown
from pipeline_lib.publishing.drift_summary import drift_markdown
from pipeline_lib.running.backfill import BackfillPlan
from pipeline_lib.running.night import Night
from pipeline_lib.validation.report import ValidationReport
from tasks.memory import RELEASE

FORECASTS_KEY = "forecasts"
BACKTEST_KEY = "backtest-metrics"
DRIFT_KEY = "drift-flags"
DECISION_KEY = "training-decision"
PLOT_KEY = "forecast-plot"
VALIDATION_KEY = "validation-summary"
BACKFILL_SUMMARY_KEY = "backfill-summary"


@task(name="publish-forecast-artifacts", cache_policy=NO_CACHE, **RELEASE)
def publish_forecast_artifacts(
    night: Night,
    forecasts: pd.DataFrame,
    decision: TrainingDecision,
    evaluation: Evaluation,
    drift: pd.DataFrame,
) -> str | None:
    """Save the forecast plot (at most ``plot.MAX_PANELS`` series, the flagged ones
    first) in the data folder and publish the run's artifacts; returns the plot's path or URL
    (None when there is no forecast to plot)."""
    settings, as_of = night.settings, night.as_of
    saved, plot_url, plotted = None, None, None
    if not forecasts.empty:
        plotted = plot.select_plot(forecasts, drift, decision)
        png = plot.plot_forecasts(night.features, forecasts, as_of, series=plotted.shown)
        saved = plot.save_plot(settings.data_dir, night.run_id, as_of, png)
        plot_url = report_link(settings, saved)
        create_markdown_artifact(
            markdown=plot.plot_markdown(plot_url, as_of, plotted.caption()),
            key=PLOT_KEY,
            description=f"Recent actuals, forecasts and their interval as of {as_of}",
        )
    create_markdown_artifact(
        markdown=artifacts.forecasts_markdown(forecasts, plot_url=plot_url, plotted=plotted),
        key=FORECASTS_KEY,
        description=f"Forecasts as of {as_of}",
    )
    create_markdown_artifact(
        markdown=artifacts.decision_markdown(decision),
        key=DECISION_KEY,
        description=f"Training decision as of {as_of}, with the drift and decay behind it",
    )
    create_markdown_artifact(
        markdown=artifacts.backtest_markdown(evaluation),
        key=BACKTEST_KEY,
        description=f"Backtest and champion selection as of {as_of}",
    )
    create_markdown_artifact(
        markdown=drift_markdown(drift),
        key=DRIFT_KEY,
        description=f"Drift flags as of {as_of}",
    )
    return saved


@task(name="publish-validation-artifact", cache_policy=NO_CACHE)
def publish_validation_artifact(
    reports: Sequence[ValidationReport],
    as_of: dt.date,
    quarantine_paths: Mapping[str, str] | None = None,
) -> None:
    """Publish the validation summary of every batch (failed ones too, with their quarantine
    folders when given), the rows revised among its notes."""
    create_markdown_artifact(
        markdown=artifacts.validation_markdown(reports, quarantine_paths),
        key=VALIDATION_KEY,
        description=f"Validation of the batches as of {as_of}",
    )


@task(name="publish-backfill-summary", cache_policy=NO_CACHE)
def publish_backfill_summary(
    settings: Settings, plan: BackfillPlan, results: Sequence[Mapping[str, Any]]
) -> None:
    """The backfill run's summary: every date, linked to its run (its forecasts) and plot."""
    create_markdown_artifact(
        markdown=backfill_summary_markdown(
            plan.start.isoformat(),
            plan.end.isoformat(),
            results,
            lambda path: report_link(settings, path),
        ),
        key=BACKFILL_SUMMARY_KEY,
        description=f"Backfill {plan.start} to {plan.end}: each date's run and plot",
    )
