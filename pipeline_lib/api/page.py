"""The HTML page of a series: its latest forecast with the band, as the run's plot draws it
(``/series/{id}/plot.png``), a table of the forecast rows, and its recent actuals.

Plain strings; every value from the database is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

ACTUALS_SHOWN = 10  # the newest actuals listed under the plot
_COLUMNS = ("target date", "horizon", "yhat", "lower", "upper", "model", "model version", "actual")
_TEXT_COLUMNS = ("target date", "model", "model version")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: right; }
th { background: #f4f4f4; }
td.text, th.text { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def _number(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    return f"{float(value):,.2f}"


def _cell(value: Any, text: bool = False) -> str:
    shown = value if text else _number(value)
    css = ' class="text"' if text else ""
    return f"<td{css}>{escape(str(shown))}</td>"


def _forecast_table(rows: Sequence[Mapping[str, Any]], observed: Mapping[Any, float]) -> str:
    head = "".join(
        f'<th class="text">{h}</th>' if h in _TEXT_COLUMNS else f"<th>{h}</th>" for h in _COLUMNS
    )
    body = []
    for r in rows:
        cells = [
            _cell(r["target_date"], text=True),
            f"<td>{int(r['horizon'])}</td>",
            _cell(r["yhat"]),
            _cell(r["yhat_lower"]),
            _cell(r["yhat_upper"]),
            _cell(r["model"], text=True),
            _cell(r["model_version"], text=True),
            _cell(observed.get(r["target_date"])),
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _actuals_part(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>No actuals in the 90 days up to the forecast date.</p>"
    newest = rows[-ACTUALS_SHOWN:][::-1]
    lines = "".join(
        f"<tr>{_cell(r['target_date'], text=True)}{_cell(r['actual'])}</tr>" for r in newest
    )
    return (
        f"<p>{len(rows)} actuals from {escape(str(rows[0]['target_date']))} to "
        f"{escape(str(rows[-1]['target_date']))}; the newest {len(newest)}:</p>"
        '<table><thead><tr><th class="text">date</th><th>actual</th></tr></thead>'
        f"<tbody>{lines}</tbody></table>"
    )


def series_page(
    series_id: str,
    forecast: Sequence[Mapping[str, Any]],
    actuals: Sequence[Mapping[str, Any]],
    links: Mapping[str, str],
) -> str:
    """The page. ``forecast``: the latest forecast's rows (not empty); ``actuals``: the
    series' actuals from 90 days before the forecast date to its last target date, oldest
    first; ``links``: ``plot`` (the PNG), ``latest`` and ``series`` (the JSON answers)."""
    as_of = forecast[0]["forecast_date"]
    models = ", ".join(dict.fromkeys(str(r["model"]) for r in forecast))
    observed = {r["target_date"]: r["actual"] for r in actuals}
    past = [r for r in actuals if r["target_date"] <= as_of]
    sid, day = escape(series_id), escape(str(as_of))
    more = [
        f'<a href="{escape(links["latest"])}">latest forecast (JSON)</a>',
        f'<a href="{escape(links["series"])}">all series (JSON)</a>',
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{sid}: forecast as of {day}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{sid}</h1>"
        f"<p>Forecast as of <b>{day}</b>: {len(forecast)} horizons, "
        f"model(s) {escape(models)}. The median and its band, after the recent actuals:</p>"
        f'<img src="{escape(links["plot"])}" alt="{sid}: actuals and the forecast as of {day}">'
        f"<h2>Forecast</h2>{_forecast_table(forecast, observed)}"
        f"<h2>Recent actuals</h2>{_actuals_part(past)}"
        f"<p>{' | '.join(more)}</p></body></html>\n"
    )
