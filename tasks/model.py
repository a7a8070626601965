"""Feature, training, forecast and drift tasks."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline_lib import monitor, retrain
from pipeline_lib.config import Settings
from pipeline_lib.features.stage import load_features, refresh_features
from pipeline_lib.model.forecast import predict
from pipeline_lib.model.trained import TrainedModel


@task(name="build-features", cache_policy=NO_CACHE, tags=["features-write"])
def build_features(settings: Settings, as_of: dt.date) -> pd.DataFrame:
    refresh_features(settings, as_of)
    return load_features(settings, as_of)


@task(name="train-or-fine-tune", cache_policy=NO_CACHE, tags=["train"])
def train_model(
    settings: Settings, features: pd.DataFrame, as_of: dt.date, force_full: bool = False
) -> tuple[TrainedModel, retrain.TrainingDecision]:
    logger = get_run_logger()

    def progress(p: dict) -> None:
        logger.info(
            "epoch %(epoch)s: train loss %(train_loss).4f, val loss %(val_loss).4f, "
            "lr %(lr).2g (%(elapsed).1fs)",
            p,
        )

    trained, decision = retrain.train_or_reuse(settings, features, as_of, force_full, progress)
    logger.info("model %s: %s (%s)", trained.version, decision.action, decision.reason)
    return trained, decision


@task(name="forecast", cache_policy=NO_CACHE)
def forecast(
    settings: Settings, trained: TrainedModel, features: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    return predict(trained, features, as_of, {s.id: s.frequency for s in settings.series})


@task(name="drift-metrics", cache_policy=NO_CACHE)
def drift_metrics(
    settings: Settings, trained: TrainedModel, features: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    return monitor.drift_metrics(features, trained.train_start, as_of, settings.drift)
