"""Whether a model still fits the settings: the series, the horizon, the quantiles, its inputs
(the covariates of ``Settings.feature_set``, their roles and reach) and the architecture. A
model that does not is trained again in full, and the reason says what changed
(:mod:`pipeline_lib.forecasting.retrain`).
"""

from __future__ import annotations

from typing import Any

from pipeline_lib.config import ModelConfig, Settings
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.model.trained import MODULE_DEFAULTS

# Every model setting but the quantiles (compared on their own) shapes the network.
# what a model is built with (quantiles are compared on their own; base_refit_rows only says
# how tonight's forecast refits the base)
_ARCHITECTURE = tuple(
    k for k in ModelConfig.model_fields if k not in ("quantiles", "base_refit_rows")
)


def settings_changed(
    record: dict[str, Any], settings: Settings, series_ids: list[str]
) -> str | None:
    """Why the model of ``record`` (its metadata) no longer fits ``settings`` and the series
    long enough to train on tonight; None when it does."""
    hp = {**MODULE_DEFAULTS, **record["hyperparameters"]}
    if sorted(record["series_ids"]) != sorted(series_ids):
        return f"series changed ({sorted(record['series_ids'])} -> {sorted(series_ids)})"
    if int(record["horizon"]) != settings.horizon:
        return f"horizon changed ({record['horizon']} -> {settings.horizon})"
    if list(record["quantiles"]) != list(settings.model.quantiles):
        return "quantiles changed"
    inputs = inputs_changed(FeatureSet.from_dict(record.get("feature_set")), settings.feature_set)
    if inputs:
        return inputs
    wanted = settings.model.model_dump()
    wanted["gate"] = settings.model.gated  # what the model records: a gate needs a base
    changed = [k for k in _ARCHITECTURE if hp.get(k) != wanted[k]]
    return f"model settings changed: {', '.join(changed)}" if changed else None


def _covariates(feature_set: FeatureSet) -> dict[str, str]:
    """Each covariate's role and reach, in words: ``past`` or ``future, known_ahead 2``."""
    roles = dict.fromkeys(feature_set.past_covariates, "past")
    for c in feature_set.future_covariates:
        roles[c.name] = f"future, known_ahead {c.known_ahead}"
    return roles


def inputs_changed(model: FeatureSet, wanted: FeatureSet) -> str | None:
    """Why a model's covariates (``model``) are not the configured ones (``wanted``), e.g.
    ``inputs changed: covariates added ['load_forecast']``; None when they are the same (a
    fine-tune keeps its parent's inputs, so it needs them unchanged)."""
    if model == wanted:
        return None
    old, new = _covariates(model), _covariates(wanted)
    parts = []
    if added := sorted(new.keys() - old.keys()):
        parts.append(f"covariates added {added}")
    if removed := sorted(old.keys() - new.keys()):
        parts.append(f"covariates removed {removed}")
    if changed := sorted(n for n in old.keys() & new.keys() if old[n] != new[n]):
        parts.append(
            "covariates changed " + ", ".join(f"{n!r} ({old[n]} -> {new[n]})" for n in changed)
        )
    return "inputs changed: " + ("; ".join(parts) or "covariate order")
