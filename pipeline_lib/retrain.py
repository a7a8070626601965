"""When to train: a full training, a fine-tune of the champion, or reuse it as it is.

The current model is the champion of the newest selection dated before the run (see
``pipeline_lib.registry``), else the newest model. The nightly run fully trains when there is
no model yet (as of the run date), when the config no longer matches the model (series,
horizon, architecture), when the model was trained on targets inside tonight's backtest
hold-out, when asked to, or when the last full training is ``retrain_every_days`` old; it
reuses the model when no data is newer than the model; otherwise it fine-tunes the model on
recent data. Every model trained here stops its training targets at the backtest hold-out
start (``fit_end``), so it can be scored out of sample. Point-in-time correct: only models
trained through the run date or earlier are considered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from pipeline_lib import paths, registry, schema
from pipeline_lib.config import ModelConfig, Settings
from pipeline_lib.evaluation.backtest import BacktestPlan, plan_backtest
from pipeline_lib.model.checkpoint import list_models, load_model, save_model
from pipeline_lib.model.train import fine_tune, train_full
from pipeline_lib.model.trained import MODULE_DEFAULTS, TrainedModel

# Every model setting but the quantiles (compared on their own) shapes the network.
_ARCHITECTURE = tuple(k for k in ModelConfig.model_fields if k != "quantiles")


@dataclass(frozen=True)
class TrainingDecision:
    """``base_version``: the current model (the champion); ``contest``: whether a new model
    must beat it on the backtest to replace it (False when it no longer fits the settings or
    cannot be scored out of sample: the new model then replaces it as it is)."""

    action: Literal["full", "finetune", "reuse"]
    reason: str
    base_version: str | None = None
    contest: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _last_full(eligible: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """The newest full training as of the run, whether it won its contest or not (the cadence
    counts training attempts: a full model that lost to the champion is not retrained in full
    again the next night); ``current`` when no full model is left in the folder."""
    fulls = [m for m in eligible if m["kind"] == "full"]
    return fulls[-1] if fulls else current


def _mismatch(record: dict[str, Any], settings: Settings, series_ids: list[str]) -> str | None:
    hp = {**MODULE_DEFAULTS, **record["hyperparameters"]}
    if sorted(record["series_ids"]) != sorted(series_ids):
        return f"series changed ({sorted(record['series_ids'])} -> {sorted(series_ids)})"
    if int(record["horizon"]) != settings.horizon:
        return f"horizon changed ({record['horizon']} -> {settings.horizon})"
    if list(record["quantiles"]) != list(settings.model.quantiles):
        return "quantiles changed"
    wanted = settings.model.model_dump()
    changed = [k for k in _ARCHITECTURE if hp.get(k) != wanted[k]]
    return f"model settings changed: {', '.join(changed)}" if changed else None


def decide(
    models: list[dict[str, Any]],
    settings: Settings,
    as_of: dt.date,
    series_ids: list[str],
    newest_data: dt.date | None,
    force_full: bool = False,
    champion: str | None = None,
    holdout_start: dt.date | None = None,
) -> TrainingDecision:
    """The training action for a run as of ``as_of``; ``models`` as from ``list_models``.

    ``champion``: the current champion's version (else the newest eligible model is current);
    ``holdout_start``: tonight's first backtest origin.
    """
    eligible = [m for m in models if m["train_end"] <= as_of.isoformat()]
    if not eligible:
        return TrainingDecision("full", f"no model trained on data up to {as_of}")
    by_version = {m["version"]: m for m in eligible}
    current = by_version.get(champion or "", eligible[-1])
    version = current["version"]
    if force_full:
        return TrainingDecision("full", "full retraining requested", version)
    mismatch = _mismatch(current, settings, series_ids)
    if mismatch:
        return TrainingDecision("full", mismatch, version, contest=False)
    target_end = current.get("fit_end") or current["train_end"]
    if holdout_start is not None and target_end > holdout_start.isoformat():
        return TrainingDecision(
            "full",
            f"model {version} was trained on targets up to {target_end}, inside tonight's "
            f"backtest (from {holdout_start})",
            version,
            contest=False,
        )
    trained_through = dt.date.fromisoformat(current["train_end"])
    if newest_data is None or newest_data <= trained_through:
        return TrainingDecision("reuse", f"no data newer than model {version}", version)
    last_full = _last_full(eligible, current)
    age = (as_of - dt.date.fromisoformat(last_full["train_end"])).days
    if age >= settings.training.retrain_every_days:
        return TrainingDecision(
            "full",
            f"last full training ({last_full['version']}) is {age} days old "
            f"(retrain_every_days={settings.training.retrain_every_days})",
            version,
        )
    return TrainingDecision("finetune", f"new data since {trained_through}", version)


def train_or_reuse(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    force_full: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    lineage_start: dt.date | None = None,
) -> tuple[TrainedModel, TrainingDecision]:
    """Apply :func:`decide` and return the model trained tonight, or the reused one (saved in
    models/). Training targets stop at tonight's backtest hold-out start.

    ``lineage_start``: consider only the models chosen (champion or challenger) by nights
    from that date on, up to ``as_of`` (a backfill chunk: the first chunk continues the
    nightly's lineage, each later one starts its own with a full training), so chunks run in
    parallel see none of each other's models and reach the same ones as one after the other.
    """
    url = paths.models_dir(settings.data_dir)
    rows = features[features[schema.DATE] <= pd.Timestamp(as_of)]
    newest = None if rows.empty else pd.Timestamp(rows[schema.DATE].max()).date()
    counts = rows.groupby(schema.SERIES_ID).size()
    needed = settings.model.lookback + settings.horizon  # shorter series cannot be trained on
    series_ids = sorted(str(s) for s in counts.index[counts >= needed])
    fit_end = holdout_plan(settings, rows, as_of).holdout_start
    models = list_models(url)
    if lineage_start is None:
        previous = registry.latest_selection(url, as_of, lineage=settings.lineage)
    else:  # the lineage's selections, read once: their models, and the newest one's champion
        chosen = registry.selections(url, as_of, lineage_start, settings.lineage)
        allowed = {v for s in chosen for v in (s.champion, s.challenger) if v}
        models = [m for m in models if m["version"] in allowed]
        previous = chosen[-1] if chosen else None
    champion = previous.champion if previous else None
    decision = decide(models, settings, as_of, series_ids, newest, force_full, champion, fit_end)
    if lineage_start is not None and not models:
        decision = TrainingDecision("full", f"no model chosen since {lineage_start} (backfill)")
    if decision.action == "reuse":
        return load_model(url, decision.base_version), decision
    if decision.action == "full":
        trained = train_full(
            rows, settings.model, settings.training, settings.horizon, as_of, progress, fit_end
        )
    else:
        parent = load_model(url, decision.base_version)
        trained = fine_tune(parent, rows, settings.training, as_of, progress, fit_end)
    save_model(url, trained)
    return trained, decision


def holdout_plan(settings: Settings, features: pd.DataFrame, as_of: dt.date) -> BacktestPlan:
    """Tonight's backtest origins; origins need ``lookback + horizon`` rows before them."""
    min_train = settings.model.lookback + settings.horizon
    return plan_backtest(features, as_of, settings.horizon, settings.backtest, min_train)
