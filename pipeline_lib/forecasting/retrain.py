"""When to train: a full training, a fine-tune of the champion, or reuse it as it is.

The current model is the champion of the newest selection dated before the run (see
``pipeline_lib.forecasting.registry``), else the newest model. The nightly run fully trains when
there is no model yet (as of the run date), when the config no longer matches the model (series,
horizon, inputs: the covariates of ``Settings.feature_set``, architecture), when the model
was trained on targets inside tonight's backtest hold-out, when asked to, or when the last
full training is ``retrain_every_days`` old; it reuses the model when no data is newer than
the model; otherwise it fine-tunes the model on recent data. Every model trained here stops
its training targets at the backtest hold-out start (``fit_end``), so it can be scored out of
sample. Point-in-time correct: only models trained through the run date or earlier are
considered.

Drift and decay (``[retrain_policy]``, :mod:`pipeline_lib.monitoring.policy`) bring the full
training forward: when the night's verdict triggers and the last full training is at least
``cooldown_days`` old, the run trains in full instead of fine-tuning. Every decision names
its ``trigger`` (a short code for BI: no_model, requested, settings_changed, holdout,
no_new_data, cadence, drift, decay, drift+decay, routine) and carries the verdict.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd
from sqlalchemy import Engine

from pipeline_lib import db, paths
from pipeline_lib.config import Settings
from pipeline_lib.forecasting.model.checkpoint import load_model, save_model
from pipeline_lib.forecasting.model.finetune import fine_tune
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.settings_fit import settings_changed
from pipeline_lib.forecasting.situation import (
    Situation,
    current_model,
    models_before,
    newest_full,
    situation,
)
from pipeline_lib.monitoring.monitor import Monitoring, before_training
from pipeline_lib.monitoring.policy import DriftVerdict, assess

log = logging.getLogger(__name__)

DRIFT_FLAGS_KEY = "drift_flags"  # in a full model's metrics: the flags it was trained with


@dataclass(frozen=True)
class TrainingDecision:
    """``base_version``: the current model (the champion); ``contest``: whether a new model
    must beat it on the backtest to replace it (False when it no longer fits the settings or
    cannot be scored out of sample: the new model then replaces it as it is); ``trigger``:
    what decided it (module doc); ``drift``: the policy's verdict of the night, if any."""

    action: Literal["full", "finetune", "reuse"]
    reason: str
    base_version: str | None = None
    contest: bool = True
    trigger: str = "routine"
    drift: DriftVerdict | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    models: list[dict[str, Any]],
    settings: Settings,
    as_of: dt.date,
    series_ids: list[str],
    newest_data: dt.date | None,
    force_full: bool = False,
    champion: str | None = None,
    holdout_start: dt.date | None = None,
    drift: DriftVerdict | None = None,
) -> TrainingDecision:
    """The training action for a run as of ``as_of``; ``models`` as from ``list_models``.

    ``champion``: the current champion's version (else the newest eligible model is current);
    ``holdout_start``: tonight's first backtest origin; ``drift``: the night's policy verdict
    (:func:`pipeline_lib.monitoring.policy.assess`), applied after every other reason.
    """
    current = current_model(models, as_of, champion)
    if current is None:
        return TrainingDecision(
            "full", f"no model trained on data up to {as_of}", trigger="no_model", drift=drift
        )
    version = current["version"]
    if force_full:
        return TrainingDecision(
            "full", "full retraining requested", version, trigger="requested", drift=drift
        )
    mismatch = settings_changed(current, settings, series_ids)
    if mismatch:
        return TrainingDecision(
            "full", mismatch, version, contest=False, trigger="settings_changed", drift=drift
        )
    target_end = current.get("fit_end") or current["train_end"]
    if holdout_start is not None and target_end > holdout_start.isoformat():
        return TrainingDecision(
            "full",
            f"model {version} was trained on targets up to {target_end}, inside tonight's "
            f"backtest (from {holdout_start})",
            version,
            contest=False,
            trigger="holdout",
            drift=drift,
        )
    trained_through = dt.date.fromisoformat(current["train_end"])
    if newest_data is None or newest_data <= trained_through:
        return TrainingDecision(
            "reuse",
            f"no data newer than model {version}",
            version,
            trigger="no_new_data",
            drift=drift,
        )
    last_full = newest_full(models_before(models, as_of), current)
    age = (as_of - dt.date.fromisoformat(last_full["train_end"])).days
    if age >= settings.training.retrain_every_days:
        return TrainingDecision(
            "full",
            f"last full training ({last_full['version']}) is {age} days old "
            f"(retrain_every_days={settings.training.retrain_every_days})",
            version,
            trigger="cadence",
            drift=drift,
        )
    routine = f"new data since {trained_through}"
    if drift is not None and drift.retrain:
        cooldown = settings.retrain_policy.cooldown_days
        if age >= cooldown:
            return TrainingDecision(
                "full", drift.reason, version, trigger=drift.trigger, drift=drift
            )
        routine += (
            f"; {drift.trigger} would retrain, but the last full training "
            f"({last_full['version']}) is only {age} days old (cooldown_days={cooldown}): "
            f"{drift.reason}"
        )
    elif drift is not None and (drift.drifted or drift.decayed):
        routine += f"; retraining policy: {drift.reason}"
    return TrainingDecision("finetune", routine, version, drift=drift)


def train_or_reuse(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    force_full: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    lineage_start: dt.date | None = None,
    drift: DriftVerdict | None = None,
    now: Situation | None = None,
) -> tuple[TrainedModel, TrainingDecision]:
    """Apply :func:`decide` and return the model trained tonight, or the reused one (saved in
    models/). Training targets stop at tonight's backtest hold-out start.

    ``lineage_start``: consider only the models chosen (champion or challenger) by nights
    from that date on, up to ``as_of`` (a backfill chunk: the first chunk continues the
    nightly's lineage, each later one starts its own with a full training), so chunks run in
    parallel see none of each other's models and reach the same ones as one after the other.
    ``drift``: the night's retraining-policy verdict; ``now``: the night's :func:`situation`
    when the caller has it already (the monitoring read it), else it is read here.
    """
    url = paths.models_dir(settings.data_dir)
    if now is None:
        now = situation(settings, features, as_of, lineage_start)
    decision = decide(
        now.models,
        settings,
        as_of,
        now.series_ids,
        now.newest,
        force_full,
        now.champion,
        now.fit_end,
        drift,
    )
    if lineage_start is not None and not now.models:
        decision = TrainingDecision(
            "full",
            f"no model chosen since {lineage_start} (backfill)",
            trigger="no_model",
            drift=drift,
        )
    if decision.action == "reuse":
        assert decision.base_version is not None  # decide reuses only a current model
        return load_model(url, decision.base_version), decision
    rows, fit_end = now.rows, now.fit_end
    loaded: list[str] = []

    def saved(version: str) -> TrainedModel | None:
        try:
            earlier = load_model(url, version)  # complete only once its metadata is written
        except FileNotFoundError:
            return None
        log.info("model %s was saved by an earlier run tonight: loaded, not retrained", version)
        loaded.append(version)
        return earlier

    if decision.action == "full":
        trained = train_full(
            rows, settings.model, settings.training, settings.horizon, as_of, progress, fit_end,
            saved, settings.feature_set,
        )  # fmt: skip
    else:
        assert decision.base_version is not None  # decide fine-tunes only a current model
        parent = load_model(url, decision.base_version)
        trained = fine_tune(parent, rows, settings.training, as_of, progress, fit_end, saved)
    if not loaded:
        if decision.action == "full":
            # the flags this training answers: later nights count only flags not among them
            trained.metrics[DRIFT_FLAGS_KEY] = drift.keys() if drift is not None else []
        save_model(url, trained)
    return trained, decision


def monitor_night(
    settings: Settings,
    engine: Engine,
    now: Situation,
    as_of: dt.date,
    lineage_start: dt.date | None = None,
) -> tuple[Monitoring, DriftVerdict]:
    """Before training: input drift against the current model's training window (the window
    tonight's full training will use when there is no model yet) and the decay of the
    forecasts published before tonight, read from SQL; and the retraining policy's verdict.
    ``now``: the night's :func:`situation` (the same one :func:`train_or_reuse` is given).

    A backfill chunk (``lineage_start``) reads only the forecasts and backtests of its own
    nights, so its result does not depend on the chunks running beside it.
    """
    cfg = settings.drift
    current, known = now.current(as_of), []
    if current is None:
        version = None
        train_start = as_of - dt.timedelta(days=settings.training.train_window_days - 1)
    else:
        version, train_start = current["version"], dt.date.fromisoformat(current["train_start"])
        known = known_flags(newest_full(models_before(now.models, as_of), current))
    first = min(train_start, as_of - dt.timedelta(days=cfg.decay_window_days * 2))
    if lineage_start is not None:
        first = max(first, lineage_start)
    published = db.read_forecasts(engine, settings.series_ids, first, as_of - dt.timedelta(days=1))
    backtest = db.read_backtest_summary(engine, settings.series_ids, as_of, lineage_start)
    monitoring = before_training(
        now.rows, published, backtest, train_start, as_of, cfg,
        list(settings.model.band), version,
    )  # fmt: skip
    return monitoring, assess(monitoring.rows, settings.retrain_policy, known)


def known_flags(record: dict[str, Any]) -> list[list[str]]:
    """The drift and decay flags present when a full model was trained (its metrics'
    ``drift_flags``; none for a model trained before they were recorded)."""
    return list(record.get("metrics", {}).get(DRIFT_FLAGS_KEY, []))
