"""Champion and challenger: which LSTM version is published, and per series, the LSTM or a
baseline.

The registry is the checkpoints in ``models/<version>/`` (weights and metadata, see
``pipeline_lib.model.checkpoint``), the ``model_versions`` SQL table, and one *selection*
record per forecast date in ``models/selections/<as_of>.json``: the champion after that
night, the challenger scored against it, their backtest MASE, and the model published for
every series. The champion of a night is the one of the newest selection dated before it, so
backfills are point-in-time correct and a rerun of a night repeats its own decision.

Rules (:func:`select`): a challenger (a model trained or fine-tuned tonight) becomes champion
only if its mean all-horizon MASE over the series both models were scored on is lower than the
champion's, on tonight's backtest; it is promoted without a contest when there is no champion,
when the champion no longer fits the settings (series, horizon, architecture changed), or when
the champion cannot be scored out of sample. Per series, the reference baseline (naive by
default) is published unless the best other model, the champion LSTM or another baseline, has
a backtest MASE lower than the reference's by more than ``min_improvement`` (relative): a
backtest of a few weeks of overlapping windows is noisy, and a model that merely edges the
reference there loses to it out of sample more often than not (bench/accuracy.py). A series
with no backtest score gets no forecast.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from fsspec.core import url_to_fs

from pipeline_lib import schema
from pipeline_lib.evaluation.backtest import LSTM, MODEL_VERSION, baseline_version, overall_mase
from pipeline_lib.evaluation.metrics import finite_or_none
from pipeline_lib.store.fs import atomic_write_bytes

SELECTIONS = "selections"


@dataclass(frozen=True)
class Selection:
    """The outcome of one night's champion/challenger contest and per-series choice."""

    as_of: str
    champion: str | None
    previous_champion: str | None
    challenger: str | None
    promoted: bool
    reason: str
    mase: dict[str, float] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    series_mase: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Selection:
        return cls(**record)

    def statuses(self) -> dict[str, str]:
        """``model_versions.status`` of the LSTM versions this night decided on."""
        out: dict[str, str] = {}
        if self.previous_champion and self.previous_champion != self.champion:
            out[self.previous_champion] = "retired"
        if self.challenger and self.challenger != self.champion:
            out[self.challenger] = "challenger"
        if self.champion:
            out[self.champion] = "champion"
        return out


def select(
    summary: pd.DataFrame,
    as_of: dt.date,
    champion: str | None,
    challenger: str | None,
    baselines: list[str],
    forced: str | None = None,
    reference: str = "naive",
    min_improvement: float = 0.0,
) -> Selection:
    """Decide tonight's champion and the model published per series.

    ``summary``: the backtest summary of :func:`pipeline_lib.evaluation.backtest.score_backtest`
    (every LSTM version scored and the baselines). ``champion``: the current champion's version
    (None: none yet, or it could not be scored); ``challenger``: the version trained tonight
    (None or equal to ``champion`` when the champion was reused). ``forced``: why the challenger
    replaces the champion without a contest (e.g. the settings changed). ``reference`` and
    ``min_improvement``: see :func:`_per_series`.
    """
    scores = summary.loc[summary["horizon"] == "ALL"]
    series_of = {v: set(p[schema.SERIES_ID]) for v, p in scores.groupby(MODEL_VERSION)}
    mase: dict[str, float] = {}
    if challenger is None or challenger == champion:
        winner, promoted = champion, False
        reason = "no challenger tonight; the champion is kept"
    elif champion is None:
        winner, promoted = challenger, True
        reason = forced or "no champion yet"
    elif forced:
        winner, promoted, reason = challenger, True, forced
    else:
        common = sorted(series_of.get(champion, set()) & series_of.get(challenger, set()))
        mase = {v: overall_mase(summary, v, common) for v in (champion, challenger)}
        if math.isnan(mase[champion]) or mase[challenger] < mase[champion]:
            winner, promoted = challenger, True
            reason = (
                f"challenger MASE {mase[challenger]:.4f} < champion {mase[champion]:.4f} "
                f"on {len(common)} series"
            )
        else:
            winner, promoted = champion, False
            reason = (
                f"challenger MASE {mase[challenger]:.4f} >= champion {mase[champion]:.4f} "
                f"on {len(common)} series; the champion is kept"
            )
    published, series_mase = _per_series(scores, winner, baselines, reference, min_improvement)
    return Selection(
        as_of=as_of.isoformat(),
        champion=winner,
        previous_champion=champion,
        challenger=challenger if challenger != champion else None,
        promoted=promoted,
        reason=reason,
        mase={k: finite_or_none(v) for k, v in mase.items()},
        published=published,
        series_mase=series_mase,
    )


def _per_series(
    scores: pd.DataFrame,
    champion: str | None,
    baselines: list[str],
    reference: str,
    min_improvement: float,
) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Per series: the ``reference`` baseline, unless the best other model (the champion LSTM
    or another baseline) has a MASE lower by more than ``min_improvement`` (relative)."""
    versions = {baseline_version(b): b for b in baselines}
    if champion:
        versions[champion] = LSTM
    table = scores.loc[scores[MODEL_VERSION].isin(list(versions))]
    published: dict[str, str] = {}
    series_mase: dict[str, dict[str, float]] = {}
    for sid, part in table.groupby(schema.SERIES_ID, sort=True):
        pairs = zip(part[MODEL_VERSION], part["mase"], strict=True)
        by_model = {versions[v]: float(m) for v, m in pairs}
        series_mase[str(sid)] = {k: finite_or_none(v) for k, v in by_model.items()}
        ranked = {k: v for k, v in by_model.items() if math.isfinite(v)}
        if not ranked:
            continue
        others = {k: v for k, v in ranked.items() if k != reference}
        best = min(others.items(), key=lambda kv: (kv[1], kv[0] != LSTM, kv[0]), default=None)
        if reference not in ranked:
            published[str(sid)] = best[0] if best else reference
        elif best is not None and best[1] < (1 - min_improvement) * ranked[reference]:
            published[str(sid)] = best[0]
        else:
            published[str(sid)] = reference
    return published, series_mase


def _folder(models_url: str, lineage: str = "") -> tuple[Any, str]:
    """``models/selections``, or ``models/selections/<lineage>`` for a run over a subset of
    the series (the nightly never reads those)."""
    fs, path = url_to_fs(models_url)
    folder = f"{path.rstrip('/')}/{SELECTIONS}"
    return fs, f"{folder}/{lineage}" if lineage else folder


def lineages(models_url: str) -> list[str]:
    """The selection namespaces in use: ``""`` (the configured series) and each subset's."""
    fs, folder = _folder(models_url)
    subs = (
        [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)]
        if fs.exists(folder)
        else []
    )
    return ["", *sorted(s for s in subs if fs.isdir(f"{folder}/{s}"))]


def save_selection(models_url: str, selection: Selection, lineage: str = "") -> str:
    """Write the night's selection record (atomic; a rerun of the night replaces it, unless the
    rerun reached the same champion and choices: then the first record, with the reason the
    champion won, stays)."""
    fs, folder = _folder(models_url, lineage)
    fs.makedirs(folder, exist_ok=True)
    path = f"{folder}/{selection.as_of}.json"
    url = fs.unstrip_protocol(path)
    if fs.exists(path):
        kept = Selection.from_dict(json.loads(fs.cat_file(path)))
        if (kept.champion, kept.published) == (selection.champion, selection.published):
            return url
    atomic_write_bytes(url, json.dumps(selection.to_dict(), indent=2, sort_keys=True).encode())
    return url


def _dated(
    models_url: str, before: dt.date, since: dt.date | None, lineage: str
) -> tuple[Any, list[str]]:
    fs, folder = _folder(models_url, lineage)
    if not fs.exists(folder):
        return fs, []
    low, high = (since.isoformat() if since else ""), before.isoformat()
    names = sorted(fs.glob(f"{folder}/*.json"))
    return fs, [p for p in names if low <= p.rsplit("/", 1)[-1][:-5] < high]


def selections(
    models_url: str, before: dt.date, since: dt.date | None = None, lineage: str = ""
) -> list[Selection]:
    """The selections dated strictly before ``before`` (and on or after ``since``), oldest
    first."""
    fs, dated = _dated(models_url, before, since, lineage)
    return [Selection.from_dict(json.loads(fs.cat_file(p))) for p in dated]


def latest_selection(
    models_url: str, before: dt.date, since: dt.date | None = None, lineage: str = ""
) -> Selection | None:
    """The newest selection dated strictly before ``before`` (and on or after ``since``)."""
    fs, dated = _dated(models_url, before, since, lineage)
    return Selection.from_dict(json.loads(fs.cat_file(dated[-1]))) if dated else None
