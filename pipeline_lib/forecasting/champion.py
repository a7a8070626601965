"""The nightly contest: score tonight's model, the champion and the baselines on one backtest,
pick the champion and, per series and horizon bucket, what is published (tonight's forecasts
from that choice are :mod:`pipeline_lib.forecasting.nightly_forecasts`').

See ``pipeline_lib.forecasting.registry`` for the rules and ``pipeline_lib.forecasting.backtest``
for the backtest itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.evaluation.metrics import MODEL, finite_or_none
from pipeline_lib.forecasting import evaluation_record, registry
from pipeline_lib.forecasting.backtest import (
    MODEL_VERSION,
    BacktestPlan,
    FitWindows,
    baseline_forecasts,
    baseline_version,
    lstm_forecasts,
    part_of,
    score_backtest,
)
from pipeline_lib.forecasting.baselines import Baseline
from pipeline_lib.forecasting.model.checkpoint import load_model
from pipeline_lib.forecasting.model.refits import RefitStore
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.forecasting.situation import holdout_plan
from pipeline_lib.schema import FORECAST_COLUMNS

PUBLISHED_COLUMNS = [*FORECAST_COLUMNS, MODEL, MODEL_VERSION]


@dataclass(frozen=True)
class BaselineRun:
    """The baselines' part of a night for some series, computed apart (see
    :func:`baseline_run`): their backtest forecasts from the night's origins, and tonight's
    forecasts (the forecast columns, ``model`` and ``model_version``)."""

    backtest: pd.DataFrame
    tonight: pd.DataFrame

    @staticmethod
    def concat(parts: list[BaselineRun]) -> BaselineRun:
        return BaselineRun(
            pd.concat([p.backtest for p in parts], ignore_index=True),
            pd.concat([p.tonight for p in parts], ignore_index=True),
        )


def empty_published() -> pd.DataFrame:
    """No forecasts, in the published columns."""
    return pd.DataFrame(columns=PUBLISHED_COLUMNS)


def chunked(items: list[str], size: int) -> list[list[str]]:
    """``items`` in consecutive chunks of ``size`` (the last one shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def baseline_run(
    settings: Settings,
    features: pd.DataFrame,
    plan: BacktestPlan,
    series: list[str],
    tonight: bool = True,
) -> BaselineRun:
    """Every baseline of ``settings`` on ``series`` (a chunk of the night's series): their
    forecasts from the origins of the night's ``plan`` (the statistical ones fitted at the
    whole plan's first origin, as :func:`evaluate` fits them) and, with ``tonight``,
    tonight's forecasts (else none: :func:`model_forecasts` makes those that are published).
    A series' baselines read that series only, so chunks run anywhere (a Dask worker) and
    give what :func:`evaluate` alone gives."""
    rows = features.loc[features[schema.SERIES_ID].isin(series)]
    fitted: dict[str, Baseline] = {}
    backtest = baseline_forecasts(
        list(settings.backtest.baselines), rows, part_of(plan, series), settings.frequencies,
        settings.model.band, fitted, baseline_cache(settings), settings.feature_set,
        fit_end=plan.holdout_start, windows=FitWindows.of(settings.backtest),
    )  # fmt: skip
    made = [
        model.predict(plan.as_of, settings.horizon, settings.frequencies).assign(
            **{MODEL_VERSION: baseline_version(name)}
        )
        for name, model in (fitted.items() if tonight else ())
    ]
    made = [t for t in made if not t.empty]
    return BaselineRun(backtest, pd.concat(made, ignore_index=True) if made else empty_published())


@dataclass
class Evaluation:
    """Tonight's backtest and its outcome. ``champion``: the LSTM published from (None when
    no LSTM could be scored); ``notes``: what was left out of the contest, and why;
    ``tonight``: the baselines' forecasts from tonight when they were made with their
    backtest apart (the forecast columns, ``model`` and ``model_version``); None: they are
    made for the series that publish them (:func:`model_forecasts`)."""

    plan: BacktestPlan
    rows: pd.DataFrame
    summary: pd.DataFrame
    selection: registry.Selection
    champion: TrainedModel | None
    notes: list[str] = field(default_factory=list)
    tonight: pd.DataFrame | None = None

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


def baseline_cache(settings: Settings) -> str:
    """The folder keeping what the baselines reuse from night to night (models/baselines): the
    statistical fits and forecasts, the linear model's forecasts per origin."""
    return f"{paths.models_dir(settings.data_dir).rstrip('/')}/baselines"


def refit_cache(settings: Settings) -> str:
    """The folder keeping the backtest's refits of the LSTM's base (models/refits)."""
    return f"{paths.models_dir(settings.data_dir).rstrip('/')}/refits"


def evaluate(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    candidate: TrainedModel,
    decision: TrainingDecision,
    baselines: BaselineRun | None = None,
) -> Evaluation:
    """Backtest ``candidate`` (tonight's model), the current champion and the baselines on
    tonight's origins, then :func:`pipeline_lib.forecasting.registry.select` the champion and the
    model of every series. ``baselines``: the baselines' part computed apart (:func:`baseline_run`
    on chunks of the series, e.g. on Dask); by default they run here."""
    plan = holdout_plan(settings, features, as_of)
    frequencies = settings.frequencies
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
    # the base refits: the champion's and its fine-tune's are one; last night's, when kept
    refits = RefitStore(refit_cache(settings))
    for version, model in list(models.items()):
        try:
            parts.append(
                lstm_forecasts(
                    model, features, plan, frequencies, settings.model.base_refit_rows, refits
                )
            )
        except ValueError as exc:  # trained on the hold-out: not comparable
            notes.append(str(exc))
            models.pop(version)
            if version == champion:
                forced = f"champion cannot be scored out of sample: {exc}"
    names = list(settings.backtest.baselines)
    apart = None
    if baselines is not None:  # in the order evaluate makes them: by baseline, then series
        rank = baselines.backtest[MODEL_VERSION].map(
            {baseline_version(n): i for i, n in enumerate(names)}
        )
        ids = baselines.backtest[schema.SERIES_ID].astype(str)
        apart = baselines.backtest.iloc[np.lexsort((ids.to_numpy(), rank.to_numpy()))]
    history = schema.dated_up_to(features, as_of)
    actuals = history[[schema.SERIES_ID, schema.DATE, schema.Y]]
    series = sorted(str(s) for s in history[schema.SERIES_ID].unique())
    rows_parts, summary_parts = [], []
    # by chunks of series: one chunk's forecasts and their scoring are held at once, and a
    # series is scored the same in any chunk (its MASE scale and metrics read it alone)
    for chunk in chunked(series, settings.backtest.series_per_chunk):
        if apart is None:
            base = baseline_run(settings, features, plan, chunk, tonight=False).backtest
        else:
            base = apart.loc[apart[schema.SERIES_ID].isin(chunk)]
        pieces = [f.loc[f[schema.SERIES_ID].isin(chunk)] for f in parts] + [base]
        pieces = [p for p in pieces if not p.empty]
        if not pieces:
            continue
        forecasts = pd.concat(pieces, ignore_index=True)
        del pieces, base
        rows, summary = score_backtest(
            forecasts,
            actuals.loc[actuals[schema.SERIES_ID].isin(chunk)],
            part_of(plan, chunk),
            settings.model.band,
            settings.backtest.mase_season,
        )
        rows_parts.append(rows)
        summary_parts.append(summary)
        del forecasts, rows, summary
    parts.clear()
    if not rows_parts:
        raise ValueError(
            f"no model could forecast any backtest origin as of {as_of}: the series need more "
            f"history ({settings.model.lookback + settings.horizon} rows at least)"
        )
    rows = pd.concat(rows_parts, ignore_index=True)
    rows_parts.clear()
    # the order of one scoring of every series: by model version, then series
    keys = [MODEL_VERSION, schema.SERIES_ID]
    summary = pd.concat(summary_parts, ignore_index=True).sort_values(keys, kind="stable")
    summary = summary.reset_index(drop=True)
    challenger = candidate.version if candidate.version in models else None
    cfg = settings.backtest
    record = None
    if settings.selection.record_windows:  # earlier nights' windows, read as of tonight
        record = evaluation_record.read(
            paths.models_dir(settings.data_dir),
            as_of,
            as_of - dt.timedelta(days=evaluation_record.reach(settings)),
            settings.lineage,
        )
    selection = registry.select(
        summary,
        rows,
        as_of,
        champion,
        challenger,
        names,
        forced,
        horizon=settings.horizon,
        config=settings.selection,
        reference=cfg.reference,
        min_improvement=cfg.min_improvement,
        step=cfg.step,
        record=record,
    )
    winner = models.get(selection.champion) if selection.champion else None
    tonight = baselines.tonight if baselines is not None else None
    return Evaluation(plan, rows, summary, selection, winner, notes, tonight)
