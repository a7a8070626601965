"""The forecast plot a run shows: recent actuals with the forecasts and their bands, one panel a
series, as PNG bytes, and where it is saved. At most ``MAX_PANELS`` series are drawn
(:func:`select_plot`: the ones the night flagged first), so its cost does not grow with the
series count; the forecasts markdown (:mod:`pipeline_lib.publishing.artifacts`) says which
series it draws, why, and lists the others, and :func:`plot_forecasts` draws any on demand.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.store.fs import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_PANELS = 12  # series drawn in the forecast plot; the others are listed in the markdown
NO_FLAG = "no flag"


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
