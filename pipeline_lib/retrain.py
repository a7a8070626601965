"""When to train: a full training, a fine-tune of the current model, or reuse it as it is.

The nightly run fully trains when there is no model yet (as of the run date), when the config
no longer matches the model (series, horizon, architecture), when asked to, or when the last
full training is ``retrain_every_days`` old; it reuses the model when no data is newer than the
model; otherwise it fine-tunes the current model on recent data. Point-in-time correct: only
models trained through the run date or earlier are considered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import ModelConfig, Settings
from pipeline_lib.model.checkpoint import list_models, load_model, save_model
from pipeline_lib.model.train import fine_tune, train_full
from pipeline_lib.model.trained import MODULE_DEFAULTS, TrainedModel

# Every model setting but the quantiles (compared on their own) shapes the network.
_ARCHITECTURE = tuple(k for k in ModelConfig.model_fields if k != "quantiles")


@dataclass(frozen=True)
class TrainingDecision:
    action: Literal["full", "finetune", "reuse"]
    reason: str
    base_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _last_full(current: dict[str, Any], by_version: dict[str, dict[str, Any]]) -> dict[str, Any]:
    record = current
    while record["kind"] != "full" and record.get("parent_version") in by_version:
        record = by_version[record["parent_version"]]
    return record


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
) -> TrainingDecision:
    """The training action for a run as of ``as_of``; ``models`` as from ``list_models``."""
    eligible = [m for m in models if m["train_end"] <= as_of.isoformat()]
    if not eligible:
        return TrainingDecision("full", f"no model trained on data up to {as_of}")
    current = eligible[-1]
    version = current["version"]
    if force_full:
        return TrainingDecision("full", "full retraining requested", version)
    mismatch = _mismatch(current, settings, series_ids)
    if mismatch:
        return TrainingDecision("full", mismatch, version)
    trained_through = dt.date.fromisoformat(current["train_end"])
    if newest_data is None or newest_data <= trained_through:
        return TrainingDecision("reuse", f"no data newer than model {version}", version)
    last_full = _last_full(current, {m["version"]: m for m in models})
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
) -> tuple[TrainedModel, TrainingDecision]:
    """Apply :func:`decide` and return the model to forecast with (saved in models/)."""
    url = paths.models_dir(settings.data_dir)
    rows = features[features[schema.DATE] <= pd.Timestamp(as_of)]
    newest = None if rows.empty else pd.Timestamp(rows[schema.DATE].max()).date()
    counts = rows.groupby(schema.SERIES_ID).size()
    needed = settings.model.lookback + settings.horizon  # shorter series cannot be trained on
    series_ids = sorted(str(s) for s in counts.index[counts >= needed])
    decision = decide(list_models(url), settings, as_of, series_ids, newest, force_full)
    if decision.action == "reuse":
        return load_model(url, decision.base_version), decision
    if decision.action == "full":
        trained = train_full(
            rows, settings.model, settings.training, settings.horizon, as_of, progress
        )
    else:
        parent = load_model(url, decision.base_version)
        trained = fine_tune(parent, rows, settings.training, as_of, progress)
    save_model(url, trained)
    return trained, decision
