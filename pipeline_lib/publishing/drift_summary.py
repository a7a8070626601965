"""The drift artifact for people: the alerts first, counted per series, then each alert with
the rule that raised it, so that no row reads as a pass.

A drift table (``pipeline_lib.monitoring.drift``) holds six metrics per series and feature, each
with its own threshold and flag; a night with many series flags many of them. Markdown, no Prefect:
``tasks/artifacts.py`` publishes it as the ``drift-flags`` artifact.
"""

from __future__ import annotations

import math

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.publishing.artifacts import markdown_table

MAX_SERIES_ROWS = 25  # series listed in the count per series; the rest are counted
MAX_ALERT_ROWS = 40  # alerts listed; the rest are counted
MAX_FEATURES = 4  # features named per series in the count table


def rule(metric: str, threshold: float) -> str:
    """When ``metric`` flags drift, in words a reader checks the value against."""
    t = format(threshold, ".4g")
    rules = {
        "psi": f"above {t}",
        "wasserstein_std": f"above {t}",
        "ks_pvalue": f"below {t} (KS test)",
        "mean_shift": f"beyond ±{t} (either way)",
        "std_ratio": f"outside [{format(1 / threshold, '.3g')}, {t}] (either way)",
    }
    return rules.get(metric, f"threshold {t}")


def _value(metric: str, value: float) -> str:
    if not math.isfinite(value):
        return "undefined: constant reference, and the recent window differs"
    return format(value, ".4g")


def _features(names: pd.Series) -> str:
    names = sorted(set(names))
    more = len(names) - MAX_FEATURES
    return ", ".join(names[:MAX_FEATURES]) + (f" (+{more})" if more > 0 else "")


def drift_markdown(
    drift: pd.DataFrame,
    max_series: int = MAX_SERIES_ROWS,
    max_alerts: int = MAX_ALERT_ROWS,
) -> str:
    """The alerts of ``monitor.drift_metrics``: a line that counts them, a table of alerts per
    series (most first), then the alerts with their value and rule. The KS test is one alert,
    on its p-value (its statistic has no threshold of its own and is not listed)."""
    if drift.empty:
        return "**Drift**: no drift metrics were computed: no drift flags."
    when = ""
    if "forecast_date" in drift:
        days = sorted({pd.Timestamp(d).date().isoformat() for d in drift["forecast_date"]})
        when = " as of " + ", ".join(days)
    tested = drift[drift["metric"] != "ks_statistic"]
    alerts = tested[tested["is_drift"].astype(bool)]
    series = drift[schema.SERIES_ID].nunique()
    head = f"**Drift{when}**: {len(alerts)} alerts"
    if alerts.empty:
        return f"{head}: no drift flags on {series} series ({len(tested)} checks)."
    hit = alerts[schema.SERIES_ID].nunique()
    head += f" on {hit} of {series} series ({len(tested)} checks)."
    per = (
        alerts.groupby(schema.SERIES_ID)
        .agg(alerts=("metric", "size"), features=("feature", _features))
        .sort_values(["alerts"], ascending=False, kind="stable")
    )
    per_rows = [[sid, int(r.alerts), r.features] for sid, r in per.head(max_series).iterrows()]
    text = [head, "", "**Alerts per series**", ""]
    text.append(markdown_table(["series", "alerts", "features"], per_rows))
    if len(per) > max_series:
        text.append(f"\n... and {len(per) - max_series} more series with alerts.")
    order = {sid: i for i, sid in enumerate(per.index)}
    listed = alerts.assign(_o=alerts[schema.SERIES_ID].map(order)).sort_values(
        ["_o", "feature", "metric"], kind="stable"
    )
    rows = [
        [r.series_id, r.feature, r.metric, _value(r.metric, r.value), rule(r.metric, r.threshold)]
        for r in listed.head(max_alerts).itertuples()
    ]
    text += ["", "**Alerts** (flagged when the value is ...)", ""]
    text.append(markdown_table(["series", "feature", "metric", "value", "flagged when"], rows))
    if len(listed) > max_alerts:
        text.append(f"\n... and {len(listed) - max_alerts} more alerts.")
    return "\n".join(text)
