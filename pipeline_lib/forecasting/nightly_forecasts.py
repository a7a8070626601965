"""Tonight's forecasts: every model's (the champion LSTM with its linear base refitted to the
night, the baselines as the backtest fitted them) and the published ones, per series and
horizon bucket the model or combination the night's selection chose
(:mod:`pipeline_lib.forecasting.champion`), with a fallback where a chosen model gave none.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import Settings
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.forecasting import registry
from pipeline_lib.forecasting.backtest import (
    LSTM,
    MODEL_VERSION,
    FitWindows,
    baseline_version,
    make_baseline,
)
from pipeline_lib.forecasting.champion import (
    PUBLISHED_COLUMNS,
    Evaluation,
    baseline_cache,
    empty_published,
)
from pipeline_lib.forecasting.model.base import refit_to
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.per_bucket import combine
from pipeline_lib.forecasting.selection import Choice, fallback
from pipeline_lib.forecasting.selection_records import choice_version
from pipeline_lib.schema import FORECAST_COLUMNS

log = logging.getLogger(__name__)


def model_forecasts(
    settings: Settings,
    evaluation: Evaluation,
    features: pd.DataFrame,
    as_of: dt.date,
    models: dict[str, set[str]] | None = None,
) -> pd.DataFrame:
    """Tonight's forecasts of each model (``lstm``: the champion; the baselines as the backtest
    fitted them), for the series given per model (default: every model, every series).
    Columns: the forecast columns, ``model`` and ``model_version``."""
    rows = schema.dated_up_to(features, as_of)
    frequencies = settings.frequencies
    if models is None:
        every = set(settings.series_ids)
        models = {name: every for name in [LSTM, *settings.backtest.baselines]}
    parts = []
    for model, series in sorted(models.items()):
        if model == LSTM:
            if evaluation.champion is None:
                continue
            # its linear base refitted on every row up to tonight
            # (pipeline_lib.forecasting.model.base), for the series wanted
            refitted = refit_to(
                evaluation.champion, rows, as_of, series, settings.model.base_refit_rows
            )
            out = predict(refitted, rows, as_of, frequencies)
            version = evaluation.champion.version
        elif evaluation.tonight is not None:  # made apart, with the backtest
            out = evaluation.tonight.loc[evaluation.tonight[MODEL] == model]
            version = baseline_version(model)
        else:  # fitted on the series wanted only: a series' baseline reads that series alone
            baseline = make_baseline(
                model, settings.model.band, evaluation.plan.holdout_start,
                baseline_cache(settings), settings.feature_set, FitWindows.of(settings.backtest),
            ).fit(rows.loc[rows[schema.SERIES_ID].isin(series)])  # fmt: skip
            out = baseline.predict(as_of, settings.horizon, frequencies)
            version = baseline_version(model)
        out = out.loc[out[schema.SERIES_ID].isin(series), FORECAST_COLUMNS]
        parts.append(out.assign(**{MODEL: model, MODEL_VERSION: version}))
    if not parts:
        return empty_published()
    return pd.concat(parts, ignore_index=True)[PUBLISHED_COLUMNS]


def published_forecasts(
    settings: Settings, evaluation: Evaluation, features: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    """Tonight's forecast of every series: per horizon bucket, the model or the combination
    its selection chose. Columns: the forecast columns, ``model`` (the model's name or the
    combination's ``mean(...)`` label) and ``model_version`` (the model's, or the
    combination's :func:`~pipeline_lib.forecasting.selection_records.combination_version`).

    A choice whose member gave no forecast tonight (the backtest scored it on earlier origins)
    falls back (:func:`pipeline_lib.forecasting.selection.fallback`) to the best scored model that
    did forecast, by the margin rule against the reference; the night's selection records the
    fallback, so ``model_selections`` and the selection file say what was published, and a
    note says why. Only when no scored model forecast the series is the bucket left out."""
    choices = evaluation.selection.series_choices()
    per_model = model_forecasts(settings, evaluation, features, as_of, _members(choices))
    made = set(zip(per_model[schema.SERIES_ID], per_model[MODEL], strict=True))
    broken = {
        (sid, i): c
        for sid, series_choices in choices.items()
        for i, c in enumerate(series_choices)
        if any((sid, m) not in made for m in c.weights)
    }
    if broken:  # forecast the other scored models of those series, then fall back
        backtest = settings.backtest
        wanted: dict[str, set[str]] = {}
        for (sid, _), c in broken.items():
            for m in c.evidence.get("mase", {}):
                if (m in backtest.baselines or m == LSTM) and (sid, m) not in made:
                    wanted.setdefault(m, set()).add(sid)
        extra = model_forecasts(settings, evaluation, features, as_of, wanted)
        parts = [p for p in (per_model, extra) if not p.empty]
        per_model = pd.concat(parts, ignore_index=True) if parts else per_model
        made |= set(zip(extra[schema.SERIES_ID], extra[MODEL], strict=True))
        for (sid, i), c in sorted(broken.items()):
            available = {m for s, m in made if s == sid}
            instead = fallback(c, available, backtest.reference, backtest.min_improvement)
            missing = ", ".join(sorted(m for m in c.weights if m not in available))
            where = f"{sid} horizons {c.first}-{c.last}"
            if instead is None:
                note = f"{where}: not published; {c.label} needs {missing}, which gave no "
                note += "forecast tonight, and no other scored model did"
            else:
                choices[sid][i] = instead
                note = f"{where}: {instead.label} published instead of {c.label}: {missing} "
                note += "gave no forecast tonight"
            log.warning(note)
            evaluation.notes.append(note)
        evaluation.selection = registry.with_choices(evaluation.selection, choices)
    published = combine(per_model, choices)
    if published.empty:
        return empty_published()
    selection = evaluation.selection
    versions = {c.label: choice_version(selection, c) for cs in choices.values() for c in cs}
    published[MODEL_VERSION] = published[MODEL].map(versions)
    published = published[PUBLISHED_COLUMNS]
    return published.sort_values([schema.SERIES_ID, "horizon"], ignore_index=True)


def _members(choices: dict[str, list[Choice]]) -> dict[str, set[str]]:
    """The series each model is needed for by ``choices``."""
    needed: dict[str, set[str]] = {}
    for sid, series_choices in choices.items():
        for c in series_choices:
            for m in c.weights:
                needed.setdefault(m, set()).add(sid)
    return needed
