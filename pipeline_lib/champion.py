"""The nightly contest: score tonight's model, the champion and the baselines on one backtest,
pick the champion, and build the published forecast per series from the winner.

See ``pipeline_lib.registry`` for the rules and ``pipeline_lib.evaluation.backtest`` for the
backtest itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from pipeline_lib import paths, registry, schema
from pipeline_lib.config import Settings
from pipeline_lib.evaluation.backtest import (
    LSTM,
    MODEL_VERSION,
    BacktestPlan,
    baseline_forecasts,
    baseline_version,
    lstm_forecasts,
    make_baseline,
    score_backtest,
)
from pipeline_lib.evaluation.metrics import MODEL, finite_or_none
from pipeline_lib.model.checkpoint import load_model
from pipeline_lib.model.forecast import FORECAST_COLUMNS, predict
from pipeline_lib.model.trained import TrainedModel
from pipeline_lib.retrain import TrainingDecision, holdout_plan

PUBLISHED_COLUMNS = [*FORECAST_COLUMNS, MODEL, MODEL_VERSION]


@dataclass
class Evaluation:
    """Tonight's backtest and its outcome. ``champion``: the LSTM published from (None when
    no LSTM could be scored); ``notes``: what was left out of the contest, and why."""

    plan: BacktestPlan
    rows: pd.DataFrame
    summary: pd.DataFrame
    selection: registry.Selection
    champion: TrainedModel | None
    notes: list[str] = field(default_factory=list)

    def model_metrics(self, version: str) -> dict[str, object]:
        """Backtest figures of one version for its registry record."""
        part = self.summary.loc[
            (self.summary[MODEL_VERSION] == version) & (self.summary["horizon"] == "ALL")
        ]
        per_series = {
            str(r.series_id): {
                "mase": finite_or_none(r.mase),
                "smape": finite_or_none(r.smape),
                "n": int(r.n),
            }
            for r in part.itertuples()
        }
        return {
            "backtest_date": self.plan.as_of.isoformat(),
            "holdout_start": str(self.plan.holdout_start),
            "mase": finite_or_none(part["mase"].mean()) if len(part) else None,
            "coverage": finite_or_none(part["coverage"].mean()) if len(part) else None,
            "per_series": per_series,
        }


def evaluate(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    candidate: TrainedModel,
    decision: TrainingDecision,
) -> Evaluation:
    """Backtest ``candidate`` (tonight's model), the current champion and the baselines on
    tonight's origins, then :func:`pipeline_lib.registry.select` the champion and the model of
    every series."""
    plan = holdout_plan(settings, features, as_of)
    frequencies = {s.id: s.frequency for s in settings.series}
    champion = decision.base_version
    forced = None if decision.contest else decision.reason
    models = {candidate.version: candidate}
    notes: list[str] = []
    if champion and champion != candidate.version and forced is None:
        try:
            models[champion] = load_model(paths.models_dir(settings.data_dir), champion)
        except (OSError, ValueError, KeyError) as exc:  # missing or unreadable checkpoint
            forced = f"champion {champion} could not be loaded: {exc}"
    parts = []
    for version, model in list(models.items()):
        try:
            parts.append(lstm_forecasts(model, features, plan, frequencies))
        except ValueError as exc:  # trained on the hold-out: not comparable
            notes.append(str(exc))
            models.pop(version)
            if version == champion:
                forced = f"champion cannot be scored out of sample: {exc}"
    names = list(settings.backtest.baselines)
    parts.append(baseline_forecasts(names, features, plan, frequencies, settings.model.quantiles))
    forecasts = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    if forecasts.empty:
        raise ValueError(
            f"no model could forecast any backtest origin as of {as_of}: the series need more "
            f"history ({settings.model.lookback + settings.horizon} rows at least)"
        )
    rows, summary = score_backtest(
        forecasts, features, plan, settings.model.quantiles, settings.backtest.mase_season
    )
    challenger = candidate.version if candidate.version in models else None
    cfg = settings.backtest
    selection = registry.select(
        summary, as_of, champion, challenger, names, forced, cfg.reference, cfg.min_improvement
    )
    return Evaluation(plan, rows, summary, selection, models.get(selection.champion), notes)


def published_forecasts(
    settings: Settings, evaluation: Evaluation, features: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    """Tonight's forecast of every series, from the model its backtest chose: the champion
    LSTM or a baseline. Columns: the forecast columns, ``model`` and ``model_version``."""
    rows = features.loc[features[schema.DATE] <= pd.Timestamp(as_of)]
    frequencies = {s.id: s.frequency for s in settings.series}
    by_model: dict[str, list[str]] = {}
    for series, model in evaluation.selection.published.items():
        by_model.setdefault(model, []).append(series)
    parts = []
    for model, series in sorted(by_model.items()):
        if model == LSTM:
            if evaluation.champion is None:
                continue
            out = predict(evaluation.champion, rows, as_of, frequencies)
            version = evaluation.champion.version
        else:
            baseline = make_baseline(model, settings.model.quantiles).fit(rows)
            out = baseline.predict(as_of, settings.horizon, frequencies)
            version = baseline_version(model)
        out = out.loc[out[schema.SERIES_ID].isin(series), FORECAST_COLUMNS]
        parts.append(out.assign(**{MODEL: model, MODEL_VERSION: version}))
    if not parts:
        return pd.DataFrame(columns=PUBLISHED_COLUMNS)
    published = pd.concat(parts, ignore_index=True)[PUBLISHED_COLUMNS]
    return published.sort_values([schema.SERIES_ID, "horizon"], ignore_index=True)


def baseline_records(settings: Settings) -> list[dict[str, object]]:
    """``model_versions`` rows of the baselines in use (kind and status ``baseline``)."""
    records = []
    for name in settings.backtest.baselines:
        model = make_baseline(name, settings.model.quantiles)
        params = {
            k: v
            for k, v in vars(model).items()
            if k not in ("series", "covariate_columns") and not k.startswith("_")
        }
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
