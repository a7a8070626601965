"""Calendar encodings, known in advance for any date (so usable for target dates too), and the
target dates of a forecast.

A series' dates are named by one string, its *frequency* as :func:`future_dates` takes it:
``"B"`` (business days, pandas ``BDay``), ``"D"`` (every calendar day) or an exchange calendar
code of ``exchange_calendars`` (``"XNYS"``, ``"XLON"``, ``"XETR"``: the exchange's sessions, so
its holidays are skipped). ``Settings.frequencies`` gives it per series (the series'
``calendar`` when set, else its ``frequency``); every stage threads that one mapping (series id
-> frequency), and a series missing from it counts as ``"B"``. Every frequency but ``"D"`` is a
business-day one: its weekly season is 5 rows (:func:`weekly_season`).

An exchange's sessions are read once per process and code (:func:`_sessions`), from
``SESSIONS_FROM`` (or the exchange's founding) to ``exchange_calendars``' default end (about a
year after today); a date outside them is a ValueError naming the code and the range.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline_lib.schema import CALENDAR_FEATURES

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

BUSINESS, DAILY = "B", "D"
SESSIONS_FROM = pd.Timestamp("1990-01-01")  # first day an exchange calendar is read from
EXCHANGE_CODES = "exchange_calendars.get_calendar_names(), e.g. XNYS, XLON, XETR"


def calendar_features(dates: pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    """Cyclical day-of-week and month encodings, one row per date, columns CALENDAR_FEATURES."""
    idx = pd.DatetimeIndex(dates)
    dow = 2 * np.pi * idx.dayofweek.to_numpy() / 7
    month = 2 * np.pi * (idx.month.to_numpy() - 1) / 12
    out = pd.DataFrame(
        {
            "dow_sin": np.sin(dow),
            "dow_cos": np.cos(dow),
            "month_sin": np.sin(month),
            "month_cos": np.cos(month),
        }
    )
    return out[CALENDAR_FEATURES]


def future_dates(last: dt.date, horizon: int, frequency: str) -> pd.DatetimeIndex:
    """The ``horizon`` dates after ``last`` for ``frequency`` (``"B"``, ``"D"`` or an exchange
    calendar code, see the module docstring)."""
    origin = np.array([pd.Timestamp(last).to_datetime64()])
    return pd.DatetimeIndex(dates_ahead(origin, horizon, frequency)[0]).as_unit("ns")


def dates_ahead(dates: np.ndarray, horizon: int, frequency: str) -> np.ndarray:
    """The ``horizon`` dates after each of ``dates`` [N] (datetime64): [N, horizon]
    datetime64[ns]. A date need not be a business day or session itself."""
    dates = np.asarray(dates).astype("datetime64[ns]")
    if horizon < 1:
        check_frequency(frequency)
        return np.empty((len(dates), 0), "datetime64[ns]")
    if frequency == DAILY:
        return dates[:, None] + np.arange(1, horizon + 1) * np.timedelta64(1, "D")
    if frequency == BUSINESS:
        days = dates.astype("datetime64[D]")
        if np.array_equal(days.astype("datetime64[ns]"), dates, equal_nan=True):
            # dates at midnight: numpy's business days, as pandas' BDay counts them (a date
            # on a weekend rolls back to the Friday before, then steps; NaT stays NaT)
            ahead = np.busday_offset(days[:, None], np.arange(1, horizon + 1), roll="backward")
            return ahead.astype("datetime64[ns]")
        index = pd.DatetimeIndex(dates)  # with a time of day: pandas keeps it
        steps = [(index + pd.offsets.BDay(h)).to_numpy() for h in range(1, horizon + 1)]
        return np.stack(steps, axis=1).astype("datetime64[ns]")
    sessions = _sessions(frequency)
    first = np.searchsorted(sessions, dates, side="right")  # the first session after each date
    if len(dates) and (dates.min() < sessions[0] or first.max() + horizon > len(sessions)):
        day = pd.Timestamp(dates.min() if dates.min() < sessions[0] else dates.max()).date()
        raise ValueError(
            f"exchange calendar {frequency}: {horizon} sessions after {day} are outside the "
            f"sessions exchange_calendars gives ({pd.Timestamp(sessions[0]).date()} to "
            f"{pd.Timestamp(sessions[-1]).date()})"
        )
    return sessions[first[:, None] + np.arange(horizon)]


def calendar_days(start: dt.date, end: dt.date, frequency: str) -> list[dt.date]:
    """The dates of ``start..end`` (inclusive) in the calendar ``frequency``: every day for
    ``"D"``, Monday to Friday for ``"B"``, the exchange's sessions for an exchange code."""
    check_frequency(frequency)
    if frequency == DAILY:
        days = pd.date_range(start, end, freq="D")
    elif frequency == BUSINESS:
        days = pd.bdate_range(start, end)
    else:
        sessions = pd.DatetimeIndex(_sessions(frequency))
        days = sessions[(sessions >= pd.Timestamp(start)) & (sessions <= pd.Timestamp(end))]
    return [d.date() for d in days]


def weekly_season(frequency: str) -> int:
    """Rows in a week: 7 for ``"D"``, 5 for business days (``"B"`` or an exchange calendar)."""
    check_frequency(frequency)
    return 7 if frequency == DAILY else 5


def check_frequency(frequency: str) -> None:
    """Raise ValueError unless ``frequency`` is ``"B"``, ``"D"`` or an exchange calendar code."""
    if frequency not in (BUSINESS, DAILY) and not _is_exchange(frequency):
        raise ValueError(
            f"frequency must be 'B', 'D' or an exchange calendar code ({EXCHANGE_CODES}), "
            f"got {frequency!r}"
        )


def check_exchange(code: str) -> None:
    """Raise ValueError naming ``code`` when exchange_calendars has no calendar of that name."""
    if not _is_exchange(code):
        raise ValueError(f"unknown exchange calendar {code!r}; the known codes: {EXCHANGE_CODES}")


def _is_exchange(code: str) -> bool:
    import exchange_calendars

    return code in exchange_calendars.get_calendar_names()


@functools.cache
def _exchange(code: str) -> ExchangeCalendar:
    """The exchange calendar ``code``, read from ``SESSIONS_FROM`` (or the first day it can be
    evaluated, for a younger exchange) to exchange_calendars' default end; once per process."""
    import exchange_calendars

    check_frequency(code)
    bound = type(exchange_calendars.get_calendar(code)).bound_min()  # the default one: cached
    start = SESSIONS_FROM if bound is None else max(SESSIONS_FROM, pd.Timestamp(bound))
    return exchange_calendars.get_calendar(code, start=start)


@functools.cache
def _sessions(code: str) -> np.ndarray:
    """The sessions of exchange ``code`` (datetime64[ns], ascending), read once."""
    sessions = _exchange(code).sessions
    out = np.asarray(sessions.tz_localize(None) if sessions.tz else sessions, "datetime64[ns]")
    out.flags.writeable = False
    return out
