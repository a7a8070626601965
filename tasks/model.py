"""Feature, training, forecast and drift tasks."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipeline_lib import db
from pipeline_lib.config import Settings
from pipeline_lib.features.stage import load_features, refresh_features
from pipeline_lib.forecasting import champion, nightly_forecasts, retrain, situation, tuning
from pipeline_lib.forecasting.backtest import BacktestPlan
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.monitoring import monitor, policy
from pipeline_lib.running import rerun
from pipeline_lib.running.night import Night
from tasks.memory import RELEASE


@task(name="refresh-features", cache_policy=NO_CACHE, **RELEASE)
def rebuild_features(settings: Settings, as_of: dt.date) -> int:
    return refresh_features(settings, as_of)


@task(name="build-features", cache_policy=NO_CACHE, **RELEASE)
def build_features(settings: Settings, as_of: dt.date, refresh: bool = True) -> pd.DataFrame:
    if refresh:
        refresh_features(settings, as_of)
    return load_features(settings, as_of)


@task(name="check-night-done", cache_policy=NO_CACHE)
def night_done(
    settings: Settings, as_of: dt.date, lineage_start: dt.date | None, retrain_all: bool
) -> dict | None:
    """The summary of the run that already made tonight's forecasts from the same inputs (see
    ``pipeline_lib.running.rerun``), with ``reused`` naming it; None: tonight has work to do."""
    state = rerun.night_state(settings, as_of, lineage_start)
    with db.engine_scope(settings.db_url) as engine:
        done = rerun.already_done(engine, state, as_of, retrain_all)
    if done is not None:
        reason = done[rerun.REUSED]["reason"]
        get_run_logger().info(reason)
        create_markdown_artifact(
            markdown=f"# Forecasts as of {as_of}\n\n{reason}.\n",
            key="forecasts",
            description=f"Forecasts as of {as_of} (from run {done[rerun.REUSED]['run_id']})",
        )
    return done


@task(name="record-night-state", cache_policy=NO_CACHE)
def night_state(settings: Settings, as_of: dt.date, lineage_start: dt.date | None) -> str:
    """What tonight's run read and left (``pipeline_lib.running.rerun.night_state``), for a
    rerun."""
    return rerun.night_state(settings, as_of, lineage_start)


@task(name="train-or-fine-tune", cache_policy=NO_CACHE, **RELEASE)
def train_model(
    night: Night, force_full: bool = False, drift: policy.DriftVerdict | None = None
) -> tuple[TrainedModel, retrain.TrainingDecision]:
    logger = get_run_logger()

    def progress(p: dict) -> None:
        logger.info(
            "epoch %(epoch)s: train loss %(train_loss).4f, val loss %(val_loss).4f, "
            "lr %(lr).2g (%(elapsed).1fs)",
            p,
        )

    trained, decision = retrain.train_or_reuse(
        night.settings, night.features, night.as_of, force_full, progress,
        night.lineage_start, drift, night.models,
    )  # fmt: skip
    logger.info(
        "model %s: %s, trigger %s (%s)",
        trained.version, decision.action, decision.trigger, decision.reason,
    )  # fmt: skip
    return trained, decision


@task(
    name="backtest-baselines",
    task_run_name="backtest-baselines-{series[0]}-and-after",
    cache_policy=NO_CACHE,
)
def backtest_baselines(
    settings: Settings, features: pd.DataFrame, plan: BacktestPlan, series: list[str]
) -> champion.BaselineRun:
    """The baselines of a chunk of series (``[parallel] runner = "dask"``)."""
    return champion.baseline_run(settings, features, plan, series)


@task(name="backtest-and-select", cache_policy=NO_CACHE, **RELEASE)
def backtest(
    night: Night,
    candidate: TrainedModel,
    decision: retrain.TrainingDecision,
    baselines: champion.BaselineRun | None = None,
) -> champion.Evaluation:
    evaluation = champion.evaluate(
        night.settings, night.features, night.as_of, candidate, decision, baselines
    )
    logger = get_run_logger()
    logger.info("champion %s: %s", evaluation.selection.champion, evaluation.selection.reason)
    logger.info("published per series: %s", evaluation.selection.published)
    for note in evaluation.notes:
        logger.warning(note)
    return evaluation


@task(name="forecast", cache_policy=NO_CACHE, **RELEASE)
def forecast(night: Night, evaluation: champion.Evaluation) -> pd.DataFrame:
    return nightly_forecasts.published_forecasts(
        night.settings, evaluation, night.features, night.as_of
    )


@task(name="read-models", cache_policy=NO_CACHE)
def models_situation(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    lineage_start: dt.date | None = None,
) -> situation.Situation:
    """The models, champion, series and hold-out the night's monitoring and training read."""
    return situation.situation(settings, features, as_of, lineage_start)


@task(name="monitor-drift-and-decay", cache_policy=NO_CACHE, **RELEASE)
def monitor_drift(night: Night) -> tuple[monitor.Monitoring, policy.DriftVerdict]:
    """Before training: input drift against the current model's training window, decay of
    the forecasts published before tonight, and the retraining policy's verdict on them."""
    with db.engine_scope(night.settings.db_url) as engine:
        monitoring, verdict = retrain.monitor_night(
            night.settings, engine, night.models, night.as_of, night.lineage_start
        )
    logger = get_run_logger()
    flags = int(monitoring.rows["is_drift"].astype(bool).sum()) if len(monitoring.rows) else 0
    logger.info(
        "monitoring against %s (training window from %s): %d rows, %d flags",
        monitoring.model_version or "tonight's training window", monitoring.train_start,
        len(monitoring.rows), flags,
    )  # fmt: skip
    logger.info("retraining policy: %s", verdict.reason)
    return monitoring, verdict


@task(name="prediction-drift", cache_policy=NO_CACHE, **RELEASE)
def drift_metrics(
    night: Night, monitoring: monitor.Monitoring, tonight: pd.DataFrame
) -> pd.DataFrame:
    """Every drift row of the night: the monitoring's and tonight's prediction drift."""
    return monitor.with_predictions(monitoring, tonight, night.settings.drift)


@task(name="apply-tuned-settings", cache_policy=NO_CACHE)
def tuned_settings(settings: Settings, as_of: dt.date) -> Settings:
    tuned = tuning.apply_best(settings, as_of)
    if tuned is not settings:
        get_run_logger().info(
            "using the tuned configuration of %s", tuning.tuning_dir(settings.data_dir)
        )
    return tuned


@task(name="tune-hyperparameters", cache_policy=NO_CACHE, **RELEASE)
def tune_hyperparameters(
    settings: Settings, features: pd.DataFrame, as_of: dt.date, n_trials: int | None
) -> dict:
    logger = get_run_logger()

    def progress(t: dict) -> None:
        logger.info("trial %(number)s: MASE %(mase)s with %(params)s (%(train_seconds)ss)", t)

    study = tuning.tune(settings, features, as_of, n_trials, progress)
    logger.info("best: %s", study["best"])
    return study
