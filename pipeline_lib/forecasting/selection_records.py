"""What a night's choice writes to SQL beside its forecasts: the ``model_versions`` ids of
each published choice (a model's own version, or a ``combo-`` id for a combination of several),
the ``model_versions`` rows of the combinations and of the baselines in use, and the
``model_selections`` rows (per series and horizon bucket: the rule, its weights, the members'
versions and the evidence). The choice itself is :mod:`pipeline_lib.forecasting.selection`'s; the
night's contest is :mod:`pipeline_lib.forecasting.champion`'s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from pipeline_lib.config import Settings
from pipeline_lib.forecasting import registry
from pipeline_lib.forecasting.backtest import LSTM, FitWindows, baseline_version, make_baseline
from pipeline_lib.forecasting.selection import Choice


def combination_version(weights: dict[str, float], versions: dict[str, str]) -> str:
    """The ``model_versions`` id of a combination: ``combo-`` and a hash of its members'
    versions and weights (the same members give the same id)."""
    members = {versions[m]: round(w, 12) for m, w in weights.items()}
    text = json.dumps(members, sort_keys=True)
    return f"combo-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def member_versions(selection: registry.Selection, choice: Choice) -> dict[str, str]:
    """The ``model_versions`` id of each member of a choice (``lstm``: the night's champion)."""
    return {
        m: (selection.champion or "") if m == LSTM else baseline_version(m) for m in choice.weights
    }


def choice_version(selection: registry.Selection, choice: Choice) -> str:
    """The ``model_versions`` id a choice publishes under: its model's, or its combination's."""
    versions = member_versions(selection, choice)
    if len(choice.weights) == 1:
        return versions[next(iter(choice.weights))]
    return combination_version(choice.weights, versions)


def combination_records(selection: registry.Selection) -> list[dict[str, object]]:
    """``model_versions`` rows of the night's combinations (kind and status ``combination``;
    hyper-parameters: the members' weights and versions)."""
    records: dict[str, dict[str, object]] = {}
    for choices in selection.series_choices().values():
        for c in choices:
            if len(c.weights) == 1:
                continue
            version = choice_version(selection, c)
            records[version] = {
                "version": version,
                "parent_version": None,
                "kind": "combination",
                "status": "combination",
                "hyperparameters": {
                    "members": dict(sorted(c.weights.items())),
                    "versions": dict(sorted(member_versions(selection, c).items())),
                },
                "path": None,
            }
    return list(records.values())


def selection_records(selection: registry.Selection) -> list[dict[str, object]]:
    """``model_selections`` rows of the night: per series and horizon bucket, what was
    published, by which rule, with its weights, member versions and evidence."""
    as_of = dt.date.fromisoformat(selection.as_of)
    return [
        {
            "forecast_date": as_of,
            "series_id": sid,
            "horizon_from": c.first,
            "horizon_to": c.last,
            "model": c.label,
            "model_version": choice_version(selection, c),
            "rule": c.rule,
            "weights": c.weights,
            "member_versions": member_versions(selection, c),
            "evidence": c.evidence,
        }
        for sid, choices in sorted(selection.series_choices().items())
        for c in choices
    ]


def baseline_records(settings: Settings) -> list[dict[str, object]]:
    """``model_versions`` rows of the baselines in use (kind and status ``baseline``)."""
    records: list[dict[str, object]] = []
    for name in settings.backtest.baselines:
        model = make_baseline(
            name, settings.model.band, feature_set=settings.feature_set,
            windows=FitWindows.of(settings.backtest),
        )  # fmt: skip
        params = {
            k: v
            for k, v in vars(model).items()
            if k not in ("series", "covariate_columns", "cache") and not k.startswith("_")
        }
        params["feature_set"] = model.feature_set.to_dict()
        records.append(
            {
                "version": baseline_version(name),
                "parent_version": None,
                "kind": "baseline",
                "status": "baseline",
                "hyperparameters": {"name": name, **params},
                "path": None,
            }
        )
    return records
