"""Champion and challenger: which LSTM version is published, and per series and horizon
bucket, which model or combination.

The registry is the checkpoints in ``models/<version>/`` (weights and metadata, see
``pipeline_lib.forecasting.model.checkpoint``), the ``model_versions`` SQL table, and one
*selection* record per forecast date in ``models/selections/<as_of>.json``: the champion after that
night, the challenger scored against it, their backtest MASE, and what was published for
every series and horizon bucket, with the rule and its evidence. The champion of a night is
the one of the newest selection dated before it, so backfills are point-in-time correct and a
rerun of a night repeats its own decision.

Rules (:func:`select`): a challenger (a model trained or fine-tuned tonight) becomes champion
only if its mean all-horizon MASE over the series both models were scored on is lower than the
champion's, on tonight's backtest; it is promoted without a contest when there is no champion,
when the champion no longer fits the settings (series, horizon, architecture changed), or when
the champion cannot be scored out of sample. Per series and horizon bucket, the champion LSTM
and the baselines are then compared on the same backtest windows by the configured rule
(:mod:`pipeline_lib.forecasting.selection`; the default publishes the mean of the models a
Diebold-Mariano test cannot tell from the best one). A series with no backtest score gets no
forecast.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd
from fsspec.core import url_to_fs

from pipeline_lib import schema
from pipeline_lib.config import SelectionConfig
from pipeline_lib.evaluation.metrics import MODEL, finite_or_none
from pipeline_lib.forecasting import evaluation_record
from pipeline_lib.forecasting.backtest import LSTM, MODEL_VERSION, baseline_version, overall_mase
from pipeline_lib.forecasting.per_bucket import choose_all
from pipeline_lib.forecasting.selection import ROW_COLUMNS, Choice
from pipeline_lib.store.fs import atomic_write_bytes, dated_files

SELECTIONS = "selections"


@dataclass(frozen=True)
class Selection:
    """The outcome of one night's champion/challenger contest and per-series choice.

    ``published``: per series, the label published on each horizon bucket (``"1-1"``,
    ``"2-5"``, ...); ``choices``: per series, the :class:`pipeline_lib.forecasting.selection.Choice`
    of each bucket as a dict (rule, weights, evidence); ``series_mase``: per series, each model's
    all-horizon backtest MASE. A MASE that is not finite is None (JSON has no NaN)."""

    as_of: str
    champion: str | None
    previous_champion: str | None
    challenger: str | None
    promoted: bool
    reason: str
    mase: dict[str, float | None] = field(default_factory=dict)
    published: dict[str, dict[str, str]] = field(default_factory=dict)
    series_mase: dict[str, dict[str, float | None]] = field(default_factory=dict)
    choices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # the window losses first scored tonight, for the evaluation record (not in the JSON)
    new_evidence: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, new_evidence=None))
        out.pop("new_evidence")
        return out

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Selection:
        record = dict(record)
        # records written before per-bucket choices: one model per series, every horizon
        published = record.get("published", {})
        record["published"] = {
            sid: ({"all": p} if isinstance(p, str) else p) for sid, p in published.items()
        }
        return cls(**record)

    def series_choices(self) -> dict[str, list[Choice]]:
        """``choices`` as :class:`~pipeline_lib.forecasting.selection.Choice` objects."""
        return {sid: [Choice.from_dict(c) for c in cs] for sid, cs in self.choices.items()}

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


def contest_versions(baselines: Sequence[str], champion: str | None) -> dict[str, str]:
    """The model name of each version in the per-bucket contest: the baselines' and the
    champion's (``lstm``); other LSTM versions of the backtest are not in it."""
    versions = {baseline_version(b): b for b in baselines}
    if champion:
        versions[champion] = LSTM
    return versions


def contest_rows(rows: pd.DataFrame, versions: dict[str, str]) -> pd.DataFrame:
    """The backtest rows of the versions in the contest, ``model`` set to their names: only
    the columns the selection rules read (:data:`pipeline_lib.forecasting.selection.ROW_COLUMNS`),
    since at a thousand series a night's rows are millions and this is a copy of them."""
    keep = rows[MODEL_VERSION].isin(list(versions)).to_numpy()
    columns = [c for c in [*ROW_COLUMNS, MODEL_VERSION] if c in rows.columns and c != MODEL]
    contest = rows.loc[keep, columns]
    contest[MODEL] = contest[MODEL_VERSION].map(versions)
    return contest


def select(
    summary: pd.DataFrame,
    rows: pd.DataFrame,
    as_of: dt.date,
    champion: str | None,
    challenger: str | None,
    baselines: Sequence[str],
    forced: str | None = None,
    *,
    horizon: int,
    config: SelectionConfig | None = None,
    reference: str = "naive",
    min_improvement: float = 0.0,
    step: int = 1,
    record: pd.DataFrame | None = None,
) -> Selection:
    """Decide tonight's champion and what is published per series and horizon bucket.

    ``summary`` and ``rows``: the backtest summary and per-row scores of
    :func:`pipeline_lib.forecasting.backtest.score_backtest` (every LSTM version scored and the
    baselines). ``champion``: the current champion's version (None: none yet, or it could not
    be scored); ``challenger``: the version trained tonight (None or equal to ``champion`` when
    the champion was reused). ``forced``: why the challenger replaces the champion without a
    contest (e.g. the settings changed). ``config``, ``reference``, ``min_improvement``,
    ``step``: the selection rule and its inputs (see :mod:`pipeline_lib.forecasting.selection`).
    ``record``: the evaluation record's window losses of earlier nights
    (:func:`pipeline_lib.forecasting.evaluation_record.read`); with ``config.record_windows`` the
    rule reads them beside tonight's, and the selection carries what tonight adds to them.
    """
    config = config or SelectionConfig()
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
    versions = contest_versions(baselines, winner)
    contest = contest_rows(rows, versions)
    evidence = new_evidence = None
    if config.record_windows:
        tonight = evaluation_record.window_losses(contest, horizon, config.bucket_ends)
        evidence, new_evidence = evaluation_record.merge(record, tonight, config.record_windows)
    choices = choose_all(
        contest,
        horizon,
        config.bucket_ends,
        config.rule,
        evidence,
        alpha=config.alpha,
        max_members=config.max_members,
        tolerance=config.tolerance,
        reference_alpha=config.reference_alpha,
        reference=reference,
        min_improvement=min_improvement,
        step=step,
    )
    series_mase: dict[str, dict[str, float | None]] = {}
    for sid, part in scores.loc[scores[MODEL_VERSION].isin(list(versions))].groupby(
        schema.SERIES_ID, sort=True
    ):
        pairs = zip(part[MODEL_VERSION], part["mase"], strict=True)
        series_mase[str(sid)] = {versions[v]: finite_or_none(m) for v, m in pairs}
    return Selection(
        as_of=as_of.isoformat(),
        champion=winner,
        previous_champion=champion,
        challenger=challenger if challenger != champion else None,
        promoted=promoted,
        reason=reason,
        mase={k: finite_or_none(v) for k, v in mase.items()},
        series_mase=series_mase,
        **_choice_fields(choices),
        new_evidence=new_evidence,
    )


def _choice_fields(choices: dict[str, list[Choice]]) -> dict[str, Any]:
    """``published`` and ``choices`` of a :class:`Selection` from its choices."""
    return {
        "published": {
            sid: {f"{c.first}-{c.last}": c.label for c in cs} for sid, cs in choices.items()
        },
        "choices": {sid: [c.to_dict() for c in cs] for sid, cs in choices.items()},
    }


def with_choices(selection: Selection, choices: dict[str, list[Choice]]) -> Selection:
    """``selection`` publishing ``choices`` instead (a fallback replaced some of them)."""
    return replace(selection, **_choice_fields(choices))


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
    champion won, stays), and the windows it first scored to the evaluation record."""
    if selection.new_evidence is not None:
        evaluation_record.save(models_url, selection.as_of, selection.new_evidence, lineage)
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
    low = since.isoformat() if since else ""
    return fs, dated_files(fs, folder, ".json", low, before.isoformat())


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
