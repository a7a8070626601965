"""The drift artifact leads with the alerts, counts them per series and says, for each alert,
when its metric flags: never a flagged row with no threshold, or a two-sided test that reads as
a pass."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline_lib.publishing.drift_summary import drift_markdown, rule

AS_OF = dt.date(2020, 12, 31)


def _drift(flags: dict[tuple[str, str], bool]) -> pd.DataFrame:
    rows = []
    for (sid, feature), flag in flags.items():
        rows += [
            (sid, feature, "psi", 0.35 if flag else 0.05, 0.2, flag),
            (sid, feature, "ks_statistic", 0.4, np.nan, flag),  # flagged with its p-value
            (sid, feature, "ks_pvalue", 0.001 if flag else 0.2, 0.01, flag),
            (sid, feature, "mean_shift", -0.9 if flag else 0.1, 0.5, flag),
            (sid, feature, "std_ratio", 0.5 if flag else 1.0, 1.5, flag),
        ]
    columns = ["series_id", "feature", "metric", "value", "threshold", "is_drift"]
    return pd.DataFrame(rows, columns=columns).assign(forecast_date=AS_OF)


def _rows(text: str, first_cell: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]


def test_alerts_lead_counted_per_series() -> None:
    flags = {("A", "y"): True, ("A", "temp"): True, ("B", "y"): True, ("C", "y"): False}
    text = drift_markdown(_drift(flags))
    first, *_ = text.splitlines()
    # the KS test is one alert (its p-value); 4 alerts per flagged pair
    assert first == "**Drift as of 2020-12-31**: 12 alerts on 2 of 3 series (16 checks)."
    assert text.index("**Alerts per series**") < text.index("**Alerts** (flagged when")
    per_series = [r for r in text.split("**Alerts** (")[0].splitlines() if r.startswith("| ")]
    assert per_series[1:] == ["| A | 8 | temp, y |", "| B | 4 | y |"]  # most alerts first
    assert "| C |" not in text


def test_every_alert_says_when_it_flags() -> None:
    text = drift_markdown(_drift({("A", "y"): True}))
    alerts = _rows(text.split("**Alerts** (")[1], "A")
    assert alerts == [
        "| A | y | ks_pvalue | 0.001 | below 0.01 (KS test) |",
        "| A | y | mean_shift | -0.9 | beyond ±0.5 (either way) |",
        "| A | y | psi | 0.35 | above 0.2 |",
        "| A | y | std_ratio | 0.5 | outside [0.667, 1.5] (either way) |",
    ]
    assert "ks_statistic" not in text and "| - |" not in text


def test_undefined_values_and_caps() -> None:
    drift = _drift({("A", f"f{i}"): True for i in range(30)})
    drift.loc[drift["metric"] == "mean_shift", "value"] = np.nan  # constant reference
    text = drift_markdown(drift, max_series=1, max_alerts=3)
    assert "undefined: constant reference, and the recent window differs" in text
    assert text.count("| A | f") == 3 and "... and 117 more alerts." in text
    assert "f0, f1, f10, f11 (+26)" in text
    more = drift_markdown(_drift({(s, "y"): True for s in "ABC"}), max_series=2)
    assert "... and 1 more series with alerts." in more


def test_without_flags() -> None:
    text = drift_markdown(_drift({("A", "y"): False}))
    assert text == "**Drift as of 2020-12-31**: 0 alerts: no drift flags on 1 series (4 checks)."
    assert "no drift flags" in drift_markdown(_drift({}))
    assert rule("other", 3.0) == "threshold 3"
