"""Feature, training, forecast and drift tasks."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline_lib import champion, db, monitor, retrain, tuning
from pipeline_lib.config import Settings
from pipeline_lib.features.stage import load_features, refresh_features
from pipeline_lib.model.trained import TrainedModel


@task(name="refresh-features", cache_policy=NO_CACHE, tags=["features-write"])
def rebuild_features(settings: Settings, as_of: dt.date) -> int:
    return refresh_features(settings, as_of)


@task(name="build-features", cache_policy=NO_CACHE, tags=["features-write"])
def build_features(settings: Settings, as_of: dt.date, refresh: bool = True) -> pd.DataFrame:
    if refresh:
        refresh_features(settings, as_of)
    return load_features(settings, as_of)


@task(name="train-or-fine-tune", cache_policy=NO_CACHE, tags=["train"])
def train_model(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    force_full: bool = False,
    lineage_start: dt.date | None = None,
) -> tuple[TrainedModel, retrain.TrainingDecision]:
    logger = get_run_logger()

    def progress(p: dict) -> None:
        logger.info(
            "epoch %(epoch)s: train loss %(train_loss).4f, val loss %(val_loss).4f, "
            "lr %(lr).2g (%(elapsed).1fs)",
            p,
        )

    trained, decision = retrain.train_or_reuse(
        settings, features, as_of, force_full, progress, lineage_start
    )
    logger.info("model %s: %s (%s)", trained.version, decision.action, decision.reason)
    return trained, decision


@task(name="backtest-and-select", cache_policy=NO_CACHE)
def backtest(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    candidate: TrainedModel,
    decision: retrain.TrainingDecision,
) -> champion.Evaluation:
    evaluation = champion.evaluate(settings, features, as_of, candidate, decision)
    logger = get_run_logger()
    logger.info("champion %s: %s", evaluation.selection.champion, evaluation.selection.reason)
    logger.info("published per series: %s", evaluation.selection.published)
    for note in evaluation.notes:
        logger.warning(note)
    return evaluation


@task(name="forecast", cache_policy=NO_CACHE)
def forecast(
    settings: Settings, evaluation: champion.Evaluation, features: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    return champion.published_forecasts(settings, evaluation, features, as_of)


@task(name="drift-metrics", cache_policy=NO_CACHE)
def drift_metrics(
    settings: Settings,
    trained: TrainedModel,
    features: pd.DataFrame,
    tonight: pd.DataFrame,
    as_of: dt.date,
) -> pd.DataFrame:
    """Input drift, decay of the forecasts published before tonight, prediction drift."""
    cfg = settings.drift
    first = min(trained.train_start, as_of - dt.timedelta(days=cfg.decay_window_days * 2))
    with db.engine_scope(settings.db_url) as engine:
        published = db.read_forecasts(
            engine, settings.series_ids, first, as_of - dt.timedelta(days=1)
        )
        backtest = db.read_latest_backtest(engine, settings.series_ids, as_of)
    return monitor.monitoring_rows(
        features,
        tonight,
        published,
        backtest,
        trained.train_start,
        as_of,
        cfg,
        list(settings.model.quantiles),
    )


@task(name="apply-tuned-settings", cache_policy=NO_CACHE)
def tuned_settings(settings: Settings, as_of: dt.date) -> Settings:
    tuned = tuning.apply_best(settings, as_of)
    if tuned is not settings:
        get_run_logger().info(
            "using the tuned configuration of %s", tuning.tuning_dir(settings.data_dir)
        )
    return tuned


@task(name="tune-hyperparameters", cache_policy=NO_CACHE, tags=["train"])
def tune_hyperparameters(
    settings: Settings, features: pd.DataFrame, as_of: dt.date, n_trials: int | None
) -> dict:
    logger = get_run_logger()

    def progress(t: dict) -> None:
        logger.info("trial %(number)s: MASE %(mase)s with %(params)s (%(train_seconds)ss)", t)

    study = tuning.tune(settings, features, as_of, n_trials, progress)
    logger.info("best: %s", study["best"])
    return study
