"""What a run shows people: markdown summaries of its forecasts, validation, training decision,
drift and backtest,
and a PNG plot of recent actuals with the forecasts. Plain strings and bytes, no Prefect: the
tasks in ``tasks/artifacts.py`` publish them as Prefect artifacts.

The plot draws at most ``MAX_PANELS`` series (:func:`select_plot`: the ones the night flagged
first), so its cost does not grow with the series count; the forecasts markdown says which
series it draws, why, and lists the others, and :func:`plot_forecasts` draws any on demand.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.forecasting.backtest import LSTM, MODEL_VERSION
from pipeline_lib.forecasting.champion import Evaluation
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.store.fs import atomic_write_bytes
from pipeline_lib.validation.report import ValidationReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HORIZONS = (1, 5, 14)  # shown in the forecast table, with the last horizon of each run
MAX_PANELS = 12  # series drawn in the forecast plot; the others are listed in the markdown
NO_FLAG = "no flag"


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; ``|`` in a cell is escaped, newlines become spaces."""

    def line(cells: Sequence[object]) -> str:
        text = [str(c).replace("|", "\\|").replace("\n", " ") for c in cells]
        return "| " + " | ".join(text) + " |"

    out = [line(header), "|" + "---|" * len(header)]
    return "\n".join(out + [line(r) for r in rows])


def _number(value: object, fmt: str = ",.2f") -> str:
    """``value`` formatted, or ``-`` for None, NaN and infinities."""
    if value is None or not math.isfinite(float(value)):  # type: ignore[arg-type]
        return "-"
    return format(float(value), fmt)  # type: ignore[arg-type]


def _day(value: object) -> str:
    return pd.Timestamp(value).date().isoformat()


def forecasts_markdown(
    forecasts: pd.DataFrame,
    horizons: Sequence[int] = HORIZONS,
    plot_url: str | None = None,
    plotted: PlotChoice | None = None,
) -> str:
    """One row per series: the model it came from, and ``median [lower, upper]`` at
    ``horizons`` and the last horizon. ``forecasts``: ``champion.published_forecasts``.
    ``plotted``: the series the plot at ``plot_url`` draws (and why) and those it leaves out."""
    if forecasts.empty:
        return "No forecasts were published."
    last = int(forecasts["horizon"].max())
    shown = sorted({int(h) for h in horizons if h <= last} | {last})
    header = ["series", "models", "model versions", *[_horizon_label(forecasts, h) for h in shown]]
    rows = []
    for sid, part in forecasts.groupby(schema.SERIES_ID, sort=True):
        part = part.sort_values("horizon")
        by_h = part.set_index("horizon")
        cells = [_interval(by_h.loc[h]) if h in by_h.index else "-" for h in shown]
        models, versions = (
            " / ".join(dict.fromkeys(map(str, part[c]))) if c in part else "-"
            for c in (MODEL, MODEL_VERSION)
        )
        rows.append([sid, models, versions, *cells])
    as_of = ", ".join(sorted({_day(d) for d in forecasts["forecast_date"]}))
    text = (
        f"**Forecasts as of {as_of}**: median [lower, upper] at horizons {shown[0]}..{last}, "
        "each series and horizon bucket from the model or combination its selection chose "
        "(models in horizon order).\n\n" + markdown_table(header, rows)
    )
    if plot_url:
        text += f"\n\n[Plot of recent actuals and the forecasts (PNG)]({plot_url})"
        if plotted is not None:
            text += "\n\n" + _plotted_markdown(plotted)
    return text


def _plotted_markdown(plotted: PlotChoice) -> str:
    total = len(plotted.shown) + len(plotted.left_out)
    why = "; ".join(f"{sid} ({plotted.reasons[sid]})" for sid in plotted.shown)
    text = (
        f"The plot draws {len(plotted.shown)} of {total} series (at most {plotted.max_panels}: "
        f"the ones the night flagged first, then by id): {why}."
    )
    if plotted.left_out:
        names = [
            sid if plotted.reasons[sid] == NO_FLAG else f"{sid} ({plotted.reasons[sid]})"
            for sid in plotted.left_out
        ]
        text += (
            f"\n\nNot plotted ({len(plotted.left_out)}, flagged first): {', '.join(names)}. "
            "`pipeline_lib.publishing.artifacts.plot_forecasts(features, forecasts, as_of, "
            "series=[...])` draws any of them."
        )
    return text


def _horizon_label(forecasts: pd.DataFrame, h: int) -> str:
    dates = {_day(d) for d in forecasts.loc[forecasts["horizon"] == h, "target_date"]}
    return f"h={h} ({dates.pop()})" if len(dates) == 1 else f"h={h}"


def _interval(row: pd.Series) -> str:
    return f"{_number(row.yhat)} [{_number(row.yhat_lower)}, {_number(row.yhat_upper)}]"


def validation_markdown(
    reports: Sequence[ValidationReport], quarantine_paths: Mapping[str, str] | None = None
) -> str:
    """Per batch: rows, verdict, expectations met, the failed expectations and warnings by
    name; then the reports' notes (the rows revised, with old and new values), and every
    failure and warning in full. ``quarantine_paths``: see
    :class:`pipeline_lib.validation.report.ValidationFailed`."""
    if not reports:
        return "No batches were validated."
    failed = [r for r in reports if not r.success]
    as_of = ", ".join(sorted({r.as_of for r in reports}))
    header = ["batch", "source", "rows", "verdict", "met", "failed", "warnings"]
    rows = [
        [
            r.key,
            r.source or "-",
            r.row_count,
            "passed" if r.success else "**FAILED**",
            f"{r.successful}/{r.evaluated}",
            ", ".join(f.check for f in r.failures) or "-",
            ", ".join(w.check for w in r.warnings) or "-",
        ]
        for r in reports
    ]
    text = (
        f"**Validation as of {as_of}**: {len(reports)} batch(es), {len(failed)} failed.\n\n"
        + markdown_table(header, rows)
    )
    notes = [note for r in reports for note in r.notes]
    if notes:
        text += "\n\nNotes:\n" + "\n".join(f"- {note}" for note in notes)
    details = [r for r in reports if r.failures or r.warnings or r.skipped]
    if details:
        lines = [r.summary() for r in details]
        where = quarantine_paths or {}
        lines += [f"{key} quarantined in {path}" for key, path in sorted(where.items())]
        text += "\n\n```text\n" + "\n".join(lines) + "\n```"
    return text


def decision_markdown(decision: TrainingDecision) -> str:
    """Tonight's training decision: the action, its trigger and reason, and the drift and
    decay flags the retraining policy counted."""
    base = f" from {decision.base_version}" if decision.base_version else ""
    head = (
        f"**Training: {decision.action}**{base} (trigger `{decision.trigger}`): {decision.reason}"
    )
    verdict = decision.drift
    if verdict is None:
        return f"{head}\n\nThe retraining policy was not consulted."
    said = "calls for a full training" if verdict.retrain else "does not call for a retraining"
    text = f"{head}\n\n**Retraining policy** {said}: {verdict.reason}"
    flags = [*verdict.drifted, *verdict.decayed]
    if flags:
        rows = [
            [
                f.kind,
                f.series_id,
                f.feature,
                ", ".join(f"{m} {_number(v, '.3g')}" for m, v in f.metrics.items()),
            ]
            for f in flags
        ]
        text += "\n\n" + markdown_table(["counted", "series", "feature", "flagged metrics"], rows)
    return text


def backtest_markdown(evaluation: Evaluation) -> str:
    """The night's contest (champion, challenger, promoted, why) and per series the published
    model's all-horizon MASE, sMAPE and coverage next to every model's MASE."""
    sel, plan = evaluation.selection, evaluation.plan
    facts = [
        ["champion", sel.champion or "none"],
        ["previous champion", sel.previous_champion or "none"],
        ["challenger", sel.challenger or "none"],
        ["promoted", "yes" if sel.promoted else "no"],
        ["reason", sel.reason],
        *[[f"MASE of {v}", _number(m, ".4f")] for v, m in sel.mase.items()],
    ]
    text = (
        f"**Backtest as of {plan.as_of.isoformat()}**: {plan.n_windows} windows (origins) "
        f"from {plan.holdout_start or '-'}, horizons 1..{plan.horizon}.\n\n"
        + markdown_table(["selection", ""], facts)
        + "\n\nPer series, all horizons (MASE: lower is better, 1 = the naive forecast's "
        "in-sample error):\n\n"
        + _series_table(evaluation)
        + "\n\nPer series and horizon bucket, what is published and why (MASE on the bucket's "
        "backtest windows; p: one-sided Diebold-Mariano p-value that a model is worse than the "
        "best one):\n\n" + _choice_table(evaluation)
    )
    if evaluation.notes:
        text += "\n\nNotes:\n" + "\n".join(f"- {n}" for n in evaluation.notes)
    return text


def _series_table(evaluation: Evaluation) -> str:
    sel = evaluation.selection
    models = sorted({m for s in sel.series_mase.values() for m in s}, key=lambda m: (m != LSTM, m))
    header = ["series", "published (horizons: model)", *[f"MASE {m}" for m in models]]
    rows = []
    for sid, by_model in sorted(sel.series_mase.items()):
        published = sel.published.get(sid, {})
        rows.append(
            [
                sid,
                "; ".join(f"{h}: {m}" for h, m in published.items()) or "none",
                *[_number(by_model.get(m), ".3f") for m in models],
            ]
        )
    return markdown_table(header, rows)


def _choice_table(evaluation: Evaluation) -> str:
    """Per series and horizon bucket: what was published, by which rule, on what evidence."""
    rows = []
    for sid, choices in sorted(evaluation.selection.series_choices().items()):
        for c in choices:
            ev = c.evidence
            mase, p = ev.get("mase", {}), ev.get("p_worse_than_best", {})
            others = ", ".join(
                f"{m} {_number(v, '.3f')} (p {_number(p.get(m), '.2f')})"
                for m, v in mase.items()
                if m not in c.weights
            )
            rows.append(
                [
                    sid,
                    f"{c.first}-{c.last}",
                    c.label,
                    c.rule,
                    ", ".join(f"{m} {w:.2f}" for m, w in c.weights.items()),
                    str(ev.get("windows", "-")),
                    ", ".join(f"{m} {_number(mase.get(m), '.3f')}" for m in c.weights),
                    others or "-",
                ]
            )
    header = ["series", "horizons", "published", "rule", "weights", "windows", "MASE", "others"]
    return markdown_table(header, rows)


@dataclass(frozen=True)
class PlotChoice:
    """The series a forecast plot draws (``shown``, in drawing order) and the series with a
    forecast it leaves out (``left_out``, flagged ones first, in the same order); ``reasons``:
    the flags of each series (``NO_FLAG`` for none)."""

    shown: list[str]
    reasons: dict[str, str]
    left_out: list[str]
    max_panels: int

    def caption(self) -> str:
        """One line for the plot's link: how many series it draws, and where the others are."""
        total = len(self.shown) + len(self.left_out)
        if not self.left_out:
            return f"all {total} series"
        return (
            f"{len(self.shown)} of {total} series, the ones flagged first; the forecasts "
            "artifact lists the others"
        )


def select_plot(
    forecasts: pd.DataFrame,
    drift: pd.DataFrame | None = None,
    decision: TrainingDecision | None = None,
    max_panels: int = MAX_PANELS,
) -> PlotChoice:
    """At most ``max_panels`` series with a forecast to plot: those whose decay the retraining
    policy counted (``decision.drift.decayed``), then those whose input drift it counted, then
    the most drift flags (``drift.is_drift``, any feature or metric), then the others by id.
    The first ``max_panels`` of that order are ``shown``, the rest ``left_out``."""
    if max_panels < 1:
        raise ValueError(f"max_panels must be at least 1, got {max_panels}")
    series = sorted(map(str, forecasts[schema.SERIES_ID].unique()))
    verdict = decision.drift if decision is not None else None
    decayed = {f.series_id for f in verdict.decayed} if verdict else set()
    drifted: dict[str, list[str]] = {}
    for f in verdict.drifted if verdict else []:
        drifted.setdefault(f.series_id, []).append(f.feature)
    flags: dict[str, int] = {}
    if drift is not None and not drift.empty:
        flagged = drift.loc[drift["is_drift"].astype(bool), schema.SERIES_ID]
        flags = {str(k): int(v) for k, v in flagged.value_counts().items()}

    def rank(sid: str) -> tuple[bool, bool, int, str]:
        return (sid not in decayed, sid not in drifted, -flags.get(sid, 0), sid)

    ordered = sorted(series, key=rank)
    reasons = {}
    for sid in ordered:
        why = ["decay counted"] if sid in decayed else []
        if sid in drifted:
            why.append(f"input drift counted: {', '.join(sorted(set(drifted[sid])))}")
        if flags.get(sid):
            why.append(f"{flags[sid]} drift flags")
        reasons[sid] = "; ".join(why) or NO_FLAG
    return PlotChoice(ordered[:max_panels], reasons, ordered[max_panels:], max_panels)


def plot_forecasts(
    features: pd.DataFrame,
    forecasts: pd.DataFrame,
    as_of: dt.date,
    recent_days: int = 90,
    series: Sequence[str] | None = None,
) -> bytes:
    """A PNG: per series, the last ``recent_days`` of actuals up to ``as_of``, the median
    forecast and its lower..upper band, and a dashed line at ``as_of``. The same inputs give
    the same bytes (no version or date in the file).

    ``series``: the series to draw, in that order (e.g. :func:`select_plot`'s ``shown``);
    default every series with a forecast, by id: one panel each, so a nightly run passes a
    bounded choice."""
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in threads

    has_forecast = set(forecasts[schema.SERIES_ID].unique())
    if series is None:
        series = sorted(has_forecast)
    series = list(series)
    missing = [s for s in series if s not in has_forecast]
    if missing:
        raise ValueError(f"no forecasts to plot for series {missing[:5]}")
    if not series:
        raise ValueError("no forecasts to plot")
    ncols = 1 if len(series) == 1 else 2
    nrows = math.ceil(len(series) / ncols)
    fig = Figure(figsize=(6.4 * ncols, 2.8 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    end = pd.Timestamp(as_of)
    rows = features.loc[features[schema.SERIES_ID].isin(series)]
    dates = pd.to_datetime(rows[schema.DATE])
    recent = rows.loc[(dates > end - pd.Timedelta(days=recent_days)) & (dates <= end)]
    for ax, sid in zip(axes, series, strict=False):
        _panel(ax, sid, recent, forecasts.loc[forecasts[schema.SERIES_ID] == sid], end)
    for ax in axes[len(series) :]:
        ax.set_axis_off()
    axes[0].legend(loc="upper left", fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _panel(
    ax: Axes, sid: str, recent: pd.DataFrame, forecast: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    actual = recent.loc[recent[schema.SERIES_ID] == sid].sort_values(schema.DATE)
    forecast = forecast.sort_values("horizon")
    target = _times(forecast["target_date"])
    observed = _times(actual[schema.DATE])
    ax.plot(observed, actual[schema.Y].to_numpy(float), color="0.2", lw=1.0, label="actual")
    low, high = forecast["yhat_lower"].to_numpy(float), forecast["yhat_upper"].to_numpy(float)
    ax.fill_between(target, low, high, color="C0", alpha=0.25, lw=0, label="interval")
    ax.plot(target, forecast["yhat"].to_numpy(float), color="C0", lw=1.5, label="forecast")
    ax.axvline(as_of.to_datetime64(), color="0.5", ls="--", lw=0.8)
    models = ", ".join(sorted(set(forecast[MODEL]))) if MODEL in forecast else ""
    ax.set_title(f"{sid} ({models})" if models else sid, fontsize="medium")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.grid(True, lw=0.3)


def _times(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy("datetime64[ns]")


def plot_url(data_dir: str, run_id: str, as_of: dt.date) -> str:
    """``<data dir>/reports/plots/<as of>/forecast-<run id>.png``."""
    return paths.reports_dir(data_dir, "plots", as_of.isoformat(), f"forecast-{run_id}.png")


def save_plot(data_dir: str, run_id: str, as_of: dt.date, png: bytes) -> str:
    """Write the plot under the data folder (atomic); returns its path or URL."""
    url = plot_url(data_dir, run_id, as_of)
    atomic_write_bytes(url, png)
    return url


def plot_markdown(url: str, as_of: dt.date, caption: str) -> str:
    """The plot shown in the run page itself: an image at ``url`` (where a browser reaches the
    reports folder, see ``pipeline_lib.api.links.report_link``), its caption and a link."""
    alt = f"forecast plot as of {as_of}"
    return f"![{alt}]({url})\n\n{alt.capitalize()}: {caption}. [Open the PNG]({url})"
