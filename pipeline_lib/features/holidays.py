"""Public holidays as a known-future covariate (the ``holidays`` package).

A holiday calendar is known years ahead, so its values are issued long before the days they are
for; they are computed here for any date range, never fetched or stored. The value of a day is
1.0 when it is a public holiday of the country (and subdivision, when given), else 0.0. Values
are issued ``known_ahead`` days before their date, like every future covariate, so they flow
through the same point-in-time lookup (:mod:`pipeline_lib.features.covariates`).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.ingest.covariate_values import covariate_rows


def check_calendar(country: str, subdivision: str | None) -> None:
    """Raise ValueError naming the country or subdivision the ``holidays`` package lacks."""
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"holidays: unknown country code {country!r} (ISO 3166-1 alpha-2)")
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        raise ValueError(
            f"holidays: unknown subdivision {subdivision!r} of {country} (known: {known})"
        )


def holiday_values(
    series_id: str,
    name: str,
    country: str,
    subdivision: str | None,
    start: dt.date,
    end: dt.date,
    known_ahead: int,
) -> pd.DataFrame:
    """One row per day in ``[start, end]`` (``schema.COVARIATE_COLUMNS``): 1.0 on the public
    holidays of ``country`` (``subdivision``), else 0.0, issued ``known_ahead`` days before."""
    import holidays

    days = pd.date_range(start, end, freq="D")
    calendar = holidays.country_holidays(
        country, subdiv=subdivision, years=range(start.year, end.year + 1)
    )
    dates = pd.Series(days)
    values = pd.Series([1.0 if d.date() in calendar else 0.0 for d in days])
    issued = dates - pd.Timedelta(days=known_ahead)
    return covariate_rows(series_id, name, dates, issued, values)[schema.COVARIATE_COLUMNS]
