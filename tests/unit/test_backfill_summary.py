"""The backfill summary links every date's run (its forecasts) and plot."""

from __future__ import annotations

from pipeline_lib.publishing.backfill_summary import backfill_summary_markdown


def _result(day: str, **extra: object) -> dict[str, object]:
    return {
        "as_of": day,
        "run_url": f"http://ui/flow-runs/flow-run/{day}",
        "plot": f"/data/reports/plots/{day}/forecast-r.png",
        "training": "full",
        "champion": "v1",
        "written": {"forecasts": 28},
        "drift_flags": 2,
        "unforecast_series": [],
        "cached": False,
    } | extra


def test_every_date_links_its_run_and_plot() -> None:
    results = [_result("2015-07-06"), _result("2015-07-07", cached=True, run_url=None, plot=None)]
    text = backfill_summary_markdown(
        "2015-07-06", "2015-07-07", results, lambda p: "http://api" + p.removeprefix("/data")
    )
    head, _, header, _, first, second = text.splitlines()
    assert head == (
        "**Backfill 2015-07-06 to 2015-07-07**: 2 forecast dates, 4 drift flags; 1 answered "
        "from a former run of the same backfill. Open a date's run for its forecasts, "
        "backtest and drift."
    )
    assert header.startswith("| forecast date | run | training |")
    assert first == (
        "| 2015-07-06 | [forecast-2015-07-06](http://ui/flow-runs/flow-run/2015-07-06) | full "
        "| v1 | 28 | 2 | [plot](http://api/reports/plots/2015-07-06/forecast-r.png) | - | no |"
    )
    assert second == "| 2015-07-07 | forecast-2015-07-07 | full | v1 | 28 | 2 | plot | - | yes |"


def test_no_dates() -> None:
    text = backfill_summary_markdown("2015-07-06", "2015-07-06", [], lambda p: p)
    assert text == "**Backfill 2015-07-06 to 2015-07-06**: no forecast dates were run."
