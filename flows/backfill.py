"""The backfill flow: the nightly logic replayed for each date of a range, point-in-time correct."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from flows.forecast import forecast_stage
from flows.ingest import ingest


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    if start > end:
        raise ValueError(f"backfill start {start} is after its end {end}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


@flow(name="backfill", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    config_file: str | None = None,
) -> list[dict[str, Any]]:
    """Ingest exactly ``start``..``end``, then forecast as of each date of it, oldest first.

    Each date sees only data dated on or before it, and only models trained through it; every
    write is an idempotent replace, so a backfill is safe to rerun.

    Args:
        start: The first forecast date.
        end: The last forecast date (inclusive).
        config_file: A TOML settings file; otherwise PIPELINE_* variables and defaults.
    """
    days = date_range(start, end)
    ingest(as_of=end, config_file=config_file, start=start)
    return [forecast_stage(as_of=day, config_file=config_file) for day in days]
