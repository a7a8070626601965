"""The backfill flow: the nightly logic replayed for each date of a range, point-in-time correct."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from flows.nightly import nightly


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
    """Run the nightly flow as of each date from ``start`` to ``end``, oldest first.

    Each date sees only data dated on or before it, and only models trained through it; every
    write is an idempotent replace, so a backfill is safe to rerun.

    Args:
        start: The first forecast date.
        end: The last forecast date (inclusive).
        config_file: A TOML settings file; otherwise PIPELINE_* variables and defaults.
    """
    return [nightly(as_of=day, config_file=config_file) for day in date_range(start, end)]
