"""Planning a backfill: the range checks, the options, the chunks and the series subset."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from pipeline_lib.config import Settings
from pipeline_lib.running.backfill import (
    BackfillOptions,
    chunk_dates,
    lineage_of,
    plan_backfill,
    scoped_settings,
)

TODAY = dt.date(2015, 12, 31)


def _plan(start: str, end: str, **options: object):
    return plan_backfill(
        Settings(), dt.date.fromisoformat(start), dt.date.fromisoformat(end),
        BackfillOptions(**options), today=TODAY,
    )  # fmt: skip


def test_range_is_checked_with_the_bad_bound_named() -> None:
    with pytest.raises(ValueError, match="end: 2015-02-01 is before start 2015-02-02"):
        _plan("2015-02-02", "2015-02-01")
    with pytest.raises(ValueError, match="end: 2016-01-01 is in the future"):
        _plan("2015-12-30", "2016-01-01")
    with pytest.raises(ValueError, match="start: .* before the first date ingested"):
        _plan("2011-12-31", "2012-01-05")
    assert _plan("2015-12-31", "2015-12-31").dates == [TODAY]  # one day, today: fine


def test_chunks_follow_the_retraining_cadence() -> None:
    plan = _plan("2015-07-01", "2015-07-10", retrain_every_days=4)
    assert plan.retrain_every_days == 4
    # the series trade on the NYSE: 3 July (a holiday) and the weekend are no forecast dates;
    # chunks span 4 days
    assert [(c.start.day, c.end.day) for c in plan.chunks] == [(1, 2), (6, 8), (9, 10)]
    assert plan.dates == [dt.date(2015, 7, d) for d in (1, 2, 6, 7, 8, 9, 10)]
    # the first chunk continues the nightly's lineage; each later one starts its own
    assert plan.chunks[0].lineage_start == Settings().start_date
    assert [c.lineage_start for c in plan.chunks[1:]] == [dt.date(2015, 7, 6), dt.date(2015, 7, 9)]
    assert "| 1 | 2015-07-06 | 2015-07-08 | 3 | full training first |" in plan.markdown()
    # default cadence: the settings' retrain_every_days
    assert _plan("2015-07-01", "2015-07-10").retrain_every_days == 28


def test_chunks_do_not_depend_on_parallelism() -> None:
    one = _plan("2015-01-01", "2015-03-01", retrain_every_days=7, parallel_chunks=1)
    many = _plan("2015-01-01", "2015-03-01", retrain_every_days=7, parallel_chunks=8)
    assert one.chunks == many.chunks
    assert chunk_dates([dt.date(2015, 1, 1)], 7, dt.date(2012, 1, 1))[0].dates == (
        dt.date(2015, 1, 1),
    )


def test_forecast_dates_follow_each_series_calendar() -> None:
    weekend = ("2015-07-04", "2015-07-05")
    with pytest.raises(ValueError, match="holds no forecast date.*calendars \\(XNYS\\)"):
        _plan(*weekend)
    daily = Settings(series=[{"id": "DE", "frequency": "D"}, {"id": "SP500"}])
    plan = plan_backfill(
        daily, dt.date(2015, 7, 3), dt.date(2015, 7, 6), BackfillOptions(), today=TODAY
    )
    assert plan.dates == [dt.date(2015, 7, d) for d in (3, 4, 5, 6)]  # DE has every day
    business = Settings(series=[{"id": "SP500", "frequency": "B"}])
    plan = plan_backfill(
        business, dt.date(2015, 7, 1), dt.date(2015, 7, 7), BackfillOptions(), today=TODAY
    )
    assert plan.dates == [dt.date(2015, 7, d) for d in (1, 2, 3, 6, 7)]  # pandas' BDay


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="retrain_every_days"):
        BackfillOptions(retrain_every_days=-1)
    assert BackfillOptions(retrain_every_days=0).retrain_every_days == 0  # the settings'
    with pytest.raises(ValidationError, match="parallel_chunks"):
        BackfillOptions(parallel_chunks=65)
    with pytest.raises(ValidationError, match="dask_address"):
        BackfillOptions(dask_address="localhost 8786")
    assert BackfillOptions().subset is None and BackfillOptions(series=["A"]).subset == ["A"]
    with pytest.raises(ValidationError, match="distinct"):
        BackfillOptions(series=["SP500", "SP500"])
    with pytest.raises(ValidationError, match="task_runner"):
        BackfillOptions(task_runner="ray")
    with pytest.raises(ValidationError, match="extra"):
        BackfillOptions(dryrun=True)


def test_series_subset_gets_its_own_lineage() -> None:
    settings = Settings()
    assert scoped_settings(settings, None) is settings
    assert scoped_settings(settings, list(reversed(settings.series_ids))) is settings
    subset = scoped_settings(settings, ["WTI", "MSFT"])
    assert subset.series_ids == ["MSFT", "WTI"]  # configured order
    assert subset.lineage == lineage_of(["MSFT", "WTI"]) == lineage_of(["WTI", "MSFT"])
    assert subset.lineage.startswith("subset-") and settings.lineage == ""
    with pytest.raises(ValueError, match=r"series: unknown series \['GOLD'\]"):
        scoped_settings(settings, ["GOLD", "WTI"])
    plan = _plan("2015-07-01", "2015-07-02", series=["WTI"])
    assert plan.series == ("WTI",) and plan.lineage == lineage_of(["WTI"])
