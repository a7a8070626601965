"""The backfill's summary for people: one row per forecast date, linking the run that made
its forecasts (its page holds the date's forecasts, backtest and drift artifacts) and its plot.

Plain markdown, no Prefect: ``tasks/artifacts.py`` publishes it as the backfill run's
``backfill-summary`` artifact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipeline_lib.publishing.artifacts import markdown_table


def _link(text: str, url: str | None) -> str:
    return f"[{text}]({url})" if url else text


def backfill_summary_markdown(
    start: str,
    end: str,
    results: Sequence[Mapping[str, Any]],
    plot_link: Callable[[str], str | None],
) -> str:
    """``results``: the backfill's per-date results (``as_of``, ``run_url``, ``plot``,
    ``training``, ``champion``, ``written``, ``drift_flags``, ``unforecast_series``,
    ``cached``), in date order; ``plot_link`` maps a plot's path to the URL a browser opens
    (None when it has none)."""
    if not results:
        return f"**Backfill {start} to {end}**: no forecast dates were run."
    rows, flags, reused = [], 0, 0
    for r in results:
        day = str(r["as_of"])
        written = r.get("written") or {}
        rows.append(
            [
                day,
                _link(f"forecast-{day}", r.get("run_url")),
                r.get("training", "-"),
                r.get("champion") or "-",
                int(written.get("forecasts", 0)),
                int(r.get("drift_flags", 0)),
                _link("plot", plot_link(r["plot"]) if r.get("plot") else None),
                ", ".join(r.get("unforecast_series") or []) or "-",
                "yes" if r.get("cached") else "no",
            ]
        )
        flags += int(r.get("drift_flags", 0))
        reused += bool(r.get("cached"))
    head = (
        f"**Backfill {start} to {end}**: {len(results)} forecast dates, {flags} drift flags"
        + (f"; {reused} answered from a former run of the same backfill" if reused else "")
        + ". Open a date's run for its forecasts, backtest and drift."
    )
    header = [
        "forecast date",
        "run",
        "training",
        "champion",
        "forecasts written",
        "drift flags",
        "plot",
        "series without a forecast",
        "from a former run",
    ]
    return f"{head}\n\n{markdown_table(header, rows)}"
