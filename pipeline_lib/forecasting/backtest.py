"""The nightly rolling-origin backtest: every model scored on the same out-of-sample windows.

A :class:`BacktestPlan` fixes, per series, the forecast dates (origins) of a run as of
``as_of``: the last ``last_n`` rows with a value, ``step`` rows apart, whose ``horizon`` next
rows are all observed by ``as_of``. Its ``holdout_start`` is the earliest of those dates: LSTMs
are trained only on targets dated on or before it (``fit_end``) with scalers fitted there, so
their forecasts from every origin are out of sample. Each forecast reads only rows dated on or
before its own origin (inputs), for the LSTM as for the baselines, whose models are refitted
per origin from those rows. Both the champion and a challenger trained later still have
``fit_end <= holdout_start`` of a later run, since origins only move forward with ``as_of``.

Forecasts come back in the production ``forecasts`` shape plus ``model`` (``lstm`` or the
baseline's name) and ``model_version``; :func:`score_backtest` joins them with the actuals
(per-row metric terms, for the ``backtest_results`` table) and summarises them per model
version, series and horizon.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import STATISTICAL_REFIT_ROWS, STATISTICAL_SEARCH_EVERY, BacktestConfig
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.evaluation.scoring import score_rows_and_summary
from pipeline_lib.evaluation.windows import rolling_origins
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.baselines import Baseline
from pipeline_lib.forecasting.ets_arima import ARIMA, ETS
from pipeline_lib.forecasting.linear_baseline import LinearLags
from pipeline_lib.forecasting.model.base import refit_to
from pipeline_lib.forecasting.model.forecast import predict_at
from pipeline_lib.forecasting.model.refits import RefitStore
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.naive import BASELINES as SIMPLE_BASELINES
from pipeline_lib.forecasting.statistical import StatsForecastBaseline

BASELINES: dict[str, type[Baseline]] = {
    **SIMPLE_BASELINES,
    LinearLags.name: LinearLags,
    ETS.name: ETS,
    ARIMA.name: ARIMA,
}

MODEL_VERSION = "model_version"
LSTM = "lstm"


def baseline_version(name: str) -> str:
    """The ``model_versions`` id of a baseline, e.g. ``baseline-naive``."""
    return f"baseline-{name}"


@dataclass(frozen=True)
class BacktestPlan:
    """The origins of one night's backtest: forecast dates (datetime64[ns]) per series."""

    as_of: dt.date
    horizon: int
    origins: dict[str, np.ndarray]

    @property
    def holdout_start(self) -> dt.date | None:
        """The earliest origin: the last date a training target of a scored model may have."""
        firsts = [d[0] for d in self.origins.values() if len(d)]
        return pd.Timestamp(min(firsts)).date() if firsts else None

    @property
    def n_windows(self) -> int:
        return sum(len(d) for d in self.origins.values())


def plan_backtest(
    features: pd.DataFrame, as_of: dt.date, horizon: int, cfg: BacktestConfig, min_train: int = 1
) -> BacktestPlan:
    """The origins of a backtest as of ``as_of`` from the rows with a value on or before it.

    ``min_train``: fewest rows up to and including an origin (a series without such an origin
    has none; pass the model's ``lookback + horizon`` so one short series cannot pull the
    hold-out back to where nothing is left to train on).
    """
    rows = features.loc[
        (features[schema.DATE] <= pd.Timestamp(as_of)) & features[schema.Y].notna(),
        [schema.SERIES_ID, schema.DATE],
    ].sort_values([schema.SERIES_ID, schema.DATE])
    origins = {}
    for sid, part in rows.groupby(schema.SERIES_ID, sort=True):
        dates = part[schema.DATE].to_numpy().astype("datetime64[ns]")
        idx = rolling_origins(len(dates), cfg.last_n, cfg.step, min_train, horizon)
        if len(idx):
            origins[str(sid)] = dates[idx]
    return BacktestPlan(as_of=as_of, horizon=horizon, origins=origins)


def lstm_forecasts(
    trained: TrainedModel,
    features: pd.DataFrame,
    plan: BacktestPlan,
    frequencies: Mapping[str, str],
    base_refit_rows: int | None = None,
    refits: RefitStore | None = None,
) -> pd.DataFrame:
    """The LSTM's forecasts from every origin of ``plan`` (one batched forward pass).

    ``base_refit_rows`` (``model.base_refit_rows``): a model with a linear base is scored with
    its base refitted as tonight's forecast refits it
    (:func:`pipeline_lib.forecasting.model.base.refit_to`), on the windows whose targets end by the
    hold-out start (the first origin: nothing after it), so the contest scores the model that is
    published; None: the base as trained. ``refits``: the base refits kept (``refit_to``'s
    ``shared``): of another model scored on the same windows (the champion and tonight's fine-tune
    of it), or of an earlier night.

    Raises ``ValueError`` when a training target of the model is dated after the hold-out
    start: its backtest would be scored on data it was trained on.
    """
    start = plan.holdout_start
    if start is not None and trained.target_end > start:
        raise ValueError(
            f"model {trained.version} was trained on targets up to {trained.target_end}, after "
            f"the backtest's first origin {start}: it cannot be scored out of sample"
        )
    if trained.horizon != plan.horizon:
        raise ValueError(f"model horizon {trained.horizon} != backtest horizon {plan.horizon}")
    rows = schema.dated_up_to(features, plan.as_of)
    if base_refit_rows is not None and start is not None:
        trained = refit_to(
            trained, rows, start, plan.origins, base_refit_rows, at_end=True, shared=refits
        )
    out = predict_at(trained, rows, plan.origins, frequencies)
    return out.assign(**{MODEL: LSTM, MODEL_VERSION: trained.version})


@dataclass(frozen=True)
class FitWindows:
    """The rows the baselines are fitted on, newest first (0: every row): ``statistical``,
    ETS's and ARIMA's (``backtest.statistical_fit_rows``); ``linear``, the linear model's
    calibration windows, whose forecasts are averaged (``backtest.linear_fit_rows``);
    ``statistical_refit``: rows between ETS's and ARIMA's fit points
    (``backtest.statistical_refit_rows``); ``statistical_search``: fit points per model search
    (``backtest.statistical_search_every``)."""

    statistical: int = 0
    linear: tuple[int, ...] = (0,)
    statistical_refit: int = STATISTICAL_REFIT_ROWS
    statistical_search: int = STATISTICAL_SEARCH_EVERY

    @classmethod
    def of(cls, config: BacktestConfig) -> FitWindows:
        return cls(
            config.statistical_fit_rows,
            tuple(config.linear_fit_rows),
            config.statistical_refit_rows,
            config.statistical_search_every,
        )


def make_baseline(
    name: str,
    quantiles: Sequence[float],
    fit_end: dt.date | None = None,
    cache: str | None = None,
    feature_set: FeatureSet = FeatureSet(),  # noqa: B008 - frozen, immutable
    windows: FitWindows = FitWindows(),  # noqa: B008 - frozen, immutable
) -> Baseline:
    """A baseline by name with the pipeline's quantile levels. ``fit_end``: for a statistical
    baseline (see ``pipeline_lib.forecasting.statistical``), the last date its parameters may be
    fitted on (the backtest's first origin). ``cache``: the folder keeping what a baseline can reuse
    on a later night (the statistical fits and forecasts, the linear model's forecasts per origin:
    ``pipeline_lib.forecasting.origin_cache``; the naive ones need none). ``feature_set``: the
    declared covariates of the features frame (``Settings.feature_set``), read by the linear
    baseline only; the empty set: no declared covariates. ``windows``: the statistical baselines'
    and the linear model's fit windows (:class:`FitWindows`; by default every row)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    kind = BASELINES[name]
    levels = tuple(quantiles)
    model: Baseline
    if issubclass(kind, StatsForecastBaseline):
        model = kind(
            quantiles=levels,
            feature_set=feature_set,
            fit_rows=windows.statistical,
            refit_every=windows.statistical_refit,
            search_every=windows.statistical_search,
        )
    elif issubclass(kind, LinearLags):
        model = kind(quantiles=levels, feature_set=feature_set, fit_rows=windows.linear)
    else:
        model = kind(quantiles=levels, feature_set=feature_set)
    if isinstance(model, StatsForecastBaseline):
        model.at(fit_end)
    return model.cache_in(cache)


def baseline_forecasts(
    names: Sequence[str],
    features: pd.DataFrame,
    plan: BacktestPlan,
    frequencies: Mapping[str, str],
    quantiles: Sequence[float],
    fitted: dict[str, Baseline] | None = None,
    cache: str | None = None,
    feature_set: FeatureSet = FeatureSet(),  # noqa: B008 - frozen, immutable
    fit_end: dt.date | None = None,
    windows: FitWindows = FitWindows(),  # noqa: B008 - frozen, immutable
) -> pd.DataFrame:
    """Each baseline's forecasts from every origin of ``plan``, from the rows dated on or
    before it (the simple baselines refit per origin, the statistical ones are fitted once at
    ``fit_end``, by default the plan's first origin: a part of a night's plan passes the whole
    plan's). ``fitted``: filled with each baseline as fitted, so tonight's forecast comes from
    the same models; ``cache``, ``feature_set``, ``windows``: see :func:`make_baseline`."""
    history = schema.dated_up_to(features, plan.as_of)
    start = fit_end or plan.holdout_start
    parts = []
    for name in names:
        model = make_baseline(name, quantiles, start, cache, feature_set, windows)
        model.fit(history)
        out = model.predict_at(plan.origins, plan.horizon, dict(frequencies))
        parts.append(out.assign(**{MODEL_VERSION: baseline_version(name)}))
        if fitted is not None:
            fitted[name] = model
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def part_of(plan: BacktestPlan, series: Sequence[str]) -> BacktestPlan:
    """The origins of ``series`` only (a chunk of a night's per-series work)."""
    kept = {s: plan.origins[s] for s in series if s in plan.origins}
    return BacktestPlan(as_of=plan.as_of, horizon=plan.horizon, origins=kept)


def score_backtest(
    forecasts: pd.DataFrame,
    features: pd.DataFrame,
    plan: BacktestPlan,
    quantiles: Sequence[float],
    season: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(rows, summary)`` of backtest forecasts of many models, scored together.

    ``rows``: the forecasts with an actual, with their per-row metric terms (see
    :func:`pipeline_lib.evaluation.scoring.score_rows`). ``summary``: one row per
    ``(model_version, series_id, horizon)`` plus horizon ``"ALL"``, with ``model`` and the
    metrics of :func:`score_forecasts`. The MASE scale of a series is the same for every model:
    the naive (``season``) error of its history up to its first origin.
    """
    history = schema.dated_up_to(features, plan.as_of)
    actuals = history[[schema.SERIES_ID, schema.DATE, schema.Y]]
    rows, summary = score_rows_and_summary(
        forecasts, actuals, actuals, season, quantiles, model=MODEL_VERSION
    )
    kinds = forecasts.drop_duplicates(MODEL_VERSION).set_index(MODEL_VERSION)[MODEL]
    summary.insert(0, MODEL, summary[MODEL_VERSION].map(kinds))
    return rows, summary


def overall_mase(summary: pd.DataFrame, version: str, series: Sequence[str]) -> float:
    """Mean over ``series`` of a model version's all-horizon MASE (NaN if any is missing)."""
    part = summary.loc[(summary[MODEL_VERSION] == version) & (summary["horizon"] == "ALL")]
    values = part.set_index(schema.SERIES_ID)["mase"].reindex(list(series))
    return float(values.mean()) if values.notna().all() and len(values) else float("nan")
