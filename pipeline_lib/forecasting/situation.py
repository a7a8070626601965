"""What a night's training decision reads, as of the night: its rows, the series long enough
to train on, the newest data date, tonight's hold-out start, the models that count (point in
time: only those trained through an earlier night, and in a backfill chunk only those its
lineage chose) and the current model (the champion of the newest selection that counts, else
the newest model). :mod:`pipeline_lib.forecasting.retrain` decides from it; the monitoring
reads the same night.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.forecasting import registry
from pipeline_lib.forecasting.backtest import BacktestPlan, plan_backtest
from pipeline_lib.forecasting.model.checkpoint import list_models


def current_model(
    models: list[dict[str, Any]], as_of: dt.date, champion: str | None
) -> dict[str, Any] | None:
    """The current model as of a run: the champion when it is among the models trained
    through ``as_of``, else the newest of them; None when there is none."""
    eligible = models_before(models, as_of)
    if not eligible:
        return None
    return {m["version"]: m for m in eligible}.get(champion or "", eligible[-1])


def models_before(models: list[dict[str, Any]], as_of: dt.date) -> list[dict[str, Any]]:
    """The models trained by the nights before ``as_of`` (point in time). A model trained
    tonight (by an earlier run of the same night: a rerun, or a run that was killed) does not
    count, so a rerun decides as the first run did and reaches the same model."""
    return [m for m in models if m["train_end"] < as_of.isoformat()]


def newest_full(eligible: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """The newest full training as of the run, whether it won its contest or not (the cadence
    counts training attempts: a full model that lost to the champion is not retrained in full
    again the next night); ``current`` when no full model is left in the folder."""
    fulls = [m for m in eligible if m["kind"] == "full"]
    return fulls[-1] if fulls else current


@dataclass(frozen=True)
class Situation:
    """What a night's decision reads: the rows up to the run, the series long enough to
    train on, the newest data date, the hold-out start (None without a backtest origin:
    no target is held out), the models that count and the champion of the newest selection
    that counts."""

    rows: pd.DataFrame
    series_ids: list[str]
    newest: dt.date | None
    fit_end: dt.date | None
    models: list[dict[str, Any]]
    champion: str | None

    def current(self, as_of: dt.date) -> dict[str, Any] | None:
        return current_model(self.models, as_of, self.champion)


def situation(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    lineage_start: dt.date | None = None,
) -> Situation:
    """The night's :class:`Situation`; ``lineage_start`` as in :func:`train_or_reuse`."""
    url = paths.models_dir(settings.data_dir)
    rows = schema.dated_up_to(features, as_of)
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
    return Situation(rows, series_ids, newest, fit_end, models, champion)


def holdout_plan(settings: Settings, features: pd.DataFrame, as_of: dt.date) -> BacktestPlan:
    """Tonight's backtest origins; origins need ``lookback + horizon`` rows before them."""
    min_train = settings.model.lookback + settings.horizon
    return plan_backtest(features, as_of, settings.horizon, settings.backtest, min_train)
