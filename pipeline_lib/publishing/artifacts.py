"""What a run shows people: markdown summaries of its forecasts, validation, training decision
and backtest (the drift's is :mod:`pipeline_lib.publishing.drift_summary`, the plot
:mod:`pipeline_lib.publishing.plot`). Plain strings, no Prefect: the tasks in
``tasks/artifacts.py`` publish them as Prefect artifacts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.forecasting.backtest import LSTM, MODEL_VERSION
from pipeline_lib.forecasting.champion import Evaluation
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.publishing.plot import NO_FLAG, PlotChoice
from pipeline_lib.validation.report import ValidationReport

HORIZONS = (1, 5, 14)  # shown in the forecast table, with the last horizon of each run


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
    ``horizons`` and the last horizon. ``forecasts``: ``nightly_forecasts.published_forecasts``.
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
            "`pipeline_lib.publishing.plot.plot_forecasts(features, forecasts, as_of, "
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
