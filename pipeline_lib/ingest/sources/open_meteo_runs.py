"""Open-Meteo weather forecasts as they were issued (source ``open_meteo_runs``; covariates).

The values of future weather covariates (``source = "weather"``, ``role = "future"``): for a
location and the days a forecast was *issued* on, the daily weather forecast ``h`` days ahead,
h = 1..``leads``, each a row issued on ``date - h``. Never the weather that happened.

- Issued before today (backtests, backfills, a late nightly): the Previous Runs API
  (https://previous-runs-api.open-meteo.com/v1/forecast). Its variables carry the lead in their
  name: ``temperature_2m_previous_day1`` is each hour's value as forecast 24 hours before it,
  ``_previous_day2`` 48 hours before, up to ``_previous_day7``. It has **hourly variables only**
  (no daily previous-run variables), so the daily values are aggregated here, by local date in
  the location's ``timezone`` (asked as ``timezone``): ``temperature_2m`` -> temp_max (max),
  temp_min (min), temp_mean (mean); ``precipitation`` -> precipitation (sum);
  ``wind_speed_10m`` -> wind_speed (max, like the archive's ``wind_speed_10m_max``). A day with a
  missing hour gets no value (not issued, never made up). Open-Meteo archives previous runs
  from January 2024 (GFS 2 m temperature from March 2021); issue days before ``since`` are not
  asked. Issue days are asked in chunks of ``chunk_days`` (``start_date``/``end_date`` = the
  target days), one landed payload each.
- Issued today (the nightly run): the Forecast API (https://api.open-meteo.com/v1/forecast),
  the same hourly variables without suffix for the next ``leads`` days, aggregated the same way,
  issued today. Issue days after the location's today cannot be asked (logged).

Both are asked with ``latitude``, ``longitude``, ``hourly``, ``start_date``, ``end_date``,
``timezone``, ``wind_speed_unit=ms``, ``temperature_unit=celsius``, ``precipitation_unit=mm``
and, when given, ``models`` (one model, e.g. ``ecmwf_ifs025``; default Open-Meteo's best match)
and ``apikey``. The Historical Forecast API is not used: it joins the *first hours* of each run,
close to the observed weather, which would leak it into a forecast's inputs. (As documented at
https://open-meteo.com/en/docs/previous-runs-api and https://open-meteo.com/en/docs.)

A value for day d with lead h aggregates each of d's hours as forecast h x 24 hours before it,
so by the runs of day d - h (hence issued d - h); its late hours come from runs late on d - h.

Options (the covariate's ``options``; every future weather covariate of one location has the
same): ``models``, ``previous_runs_url``, ``forecast_url``, ``credential`` (an API key in
``settings.credentials``: sent as ``apikey``, default URLs ``customer-previous-runs-api`` and
``customer-api``), ``since`` (first issue day asked, default 2024-01-01).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import Location
from pipeline_lib.ingest.sources.base import ParseError, SourceError
from pipeline_lib.ingest.sources.http import HttpClient
from pipeline_lib.ingest.sources.open_meteo import (
    CUSTOMER_FORECAST_URL,
    FORECAST_URL,
    location_today,
    open_meteo_answer,
)
from pipeline_lib.store.raw import JSON, Payload

log = logging.getLogger(__name__)

PREVIOUS_RUNS_URL = "https://previous-runs-api.open-meteo.com/v1/forecast"
CUSTOMER_PREVIOUS_RUNS_URL = "https://customer-previous-runs-api.open-meteo.com/v1/forecast"
PREVIOUS_RUNS, FORECAST = "previous_runs", "forecast"
MAX_LEAD_DAYS = 7  # _previous_day1 .. _previous_day7
SINCE = dt.date(2024, 1, 1)
CHUNK_DAYS = 92
MIN_HOURS = 23  # a day of a DST change may have 23 local hours
OPTIONS = frozenset({"models", "previous_runs_url", "forecast_url", "credential", "since"})

# curated weather column -> (hourly variable, daily aggregate)
DAILY = {
    "temp_max": ("temperature_2m", "max"),
    "temp_min": ("temperature_2m", "min"),
    "temp_mean": ("temperature_2m", "mean"),
    "precipitation": ("precipitation", "sum"),
    "wind_speed": ("wind_speed_10m", "max"),
}
_UNITS = {"temperature_2m": "°C", "precipitation": "mm", "wind_speed_10m": "m/s"}


def check_options(options: Mapping[str, Any]) -> None:
    """Raise ValueError naming an option that is unknown or malformed."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; known: {', '.join(sorted(OPTIONS))}")
    if "," in str(options.get("models", "")):
        raise ValueError(f"options.models names one model, got {options['models']!r}")
    if "since" in options:
        try:
            dt.date.fromisoformat(str(options["since"]))
        except ValueError:
            raise ValueError(f"options.since is not a date: {options['since']!r}") from None


class OpenMeteoRunsSource:
    """Weather forecasts of one location as issued (see the module docstring).

    ``columns``: the curated weather columns wanted; ``leads``: days ahead (1 to 7).
    ``fetch(start, end)`` asks for the values *issued* on ``start``..``end``.
    ``today`` returns the current date in the location's time zone (tests pin it).
    """

    name = "open_meteo_runs"
    dataset = schema.COVARIATES

    def __init__(
        self,
        location: Location,
        columns: Sequence[str],
        leads: int,
        client: HttpClient | None = None,
        *,
        previous_runs_url: str | None = None,
        forecast_url: str | None = None,
        api_key: str | None = None,
        models: str | None = None,
        since: dt.date = SINCE,
        chunk_days: int = CHUNK_DAYS,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        where = f"open_meteo weather forecasts for '{location.name}'"
        if not columns or set(columns) - set(DAILY):
            raise SourceError(f"{where}: columns must be among {list(DAILY)}, got {columns}")
        if not 1 <= leads <= MAX_LEAD_DAYS:
            raise SourceError(f"{where}: leads must be 1 to {MAX_LEAD_DAYS}, got {leads}")
        self.location = location
        self.key = f"weather_forecast-{location.name}"
        self.columns = [c for c in DAILY if c in columns]
        self.variables = list(dict.fromkeys(DAILY[c][0] for c in self.columns))
        self.leads = leads
        self.client = client or HttpClient()
        self._api_key = api_key
        customer = api_key is not None
        self.previous_runs_url = previous_runs_url or (
            CUSTOMER_PREVIOUS_RUNS_URL if customer else PREVIOUS_RUNS_URL
        )
        self.forecast_url = forecast_url or (CUSTOMER_FORECAST_URL if customer else FORECAST_URL)
        self.models = models
        self.since = since
        self.chunk_days = max(1, chunk_days)
        self._today = today

    def __repr__(self) -> str:  # no api key here
        return f"OpenMeteoRunsSource({self.location.name!r}, {self.columns}, leads={self.leads})"

    def today(self) -> dt.date:
        return self._today() if self._today is not None else location_today(self.location)

    def plan(self, start: dt.date, end: dt.date) -> list[tuple[str, dt.date, dt.date]]:
        """Which API answers the values issued on which days: ``(api, first, last)``."""
        today, day = self.today(), dt.timedelta(days=1)
        parts = []
        first, last = max(start, self.since), min(end, today - day)
        while first <= last:
            stop = min(last, first + (self.chunk_days - 1) * day)
            parts.append((PREVIOUS_RUNS, first, stop))
            first = stop + day
        if start <= today <= end:
            parts.append((FORECAST, today, today))
        if end > today:
            log.warning(
                "%s: forecasts issued after today (%s) cannot be asked for, not %s to %s",
                self.key, today, max(start, today + day), end,
            )  # fmt: skip
        return parts

    def fetch(self, start: dt.date, end: dt.date) -> list[Payload]:
        """One payload per request: previous runs by chunk of issue days, today's forecast."""
        return [self._get(api, first, last) for api, first, last in self.plan(start, end)]

    def _get(self, api: str, first: dt.date, last: dt.date) -> Payload:
        leads = range(1, self.leads + 1)
        if api == PREVIOUS_RUNS:
            url, names = (
                self.previous_runs_url,
                [_name(v, h) for h in leads for v in self.variables],
            )
        else:
            url, names = self.forecast_url, list(self.variables)
        params: dict[str, Any] = {
            "latitude": self.location.latitude,
            "longitude": self.location.longitude,
            "hourly": ",".join(names),
            "start_date": (first + dt.timedelta(days=1)).isoformat(),
            "end_date": (last + dt.timedelta(days=self.leads)).isoformat(),
            "timezone": self.location.timezone,
            "wind_speed_unit": "ms",
            "temperature_unit": "celsius",
            "precipitation_unit": "mm",
        }
        if self.models:
            params["models"] = self.models
        if self._api_key:
            params["apikey"] = self._api_key
        context = (
            f"open_meteo {api} weather forecasts for location '{self.location.name}', "
            f"issued {first} to {last}"
        )
        response = self.client.get(url, params, context=context)
        name = f"open_meteo_runs-{api}-{self.location.name}-{first}-{last}.json"
        return response.payload(
            self, JSON, name, api=api, issued_from=first.isoformat(),
            issued_to=last.isoformat(), leads=self.leads, columns=self.columns,
        )  # fmt: skip


def _name(variable: str, lead: int) -> str:
    return f"{variable}_previous_day{lead}" if lead else variable


def read_runs_json(payload: Payload) -> pd.DataFrame:
    """A previous-runs or forecast answer as daily values: columns ``date``, ``issued`` and the
    payload's ``columns``, one row per day and lead (1..``leads``) issued in the payload's
    ``issued_from``..``issued_to``; NaN where a day lacks an hour.

    Raises :class:`ParseError` for invalid JSON, an error answer, a missing ``hourly`` object
    or variable, arrays of unequal length, values that are not numbers, or other units.
    """
    data, fail = open_meteo_answer(payload)
    hourly = data.get("hourly")
    if not isinstance(hourly, dict) or not isinstance(hourly.get("time"), list):
        raise fail("no 'hourly' object with a 'time' array in the response")
    try:
        days = pd.to_datetime(pd.Series(hourly["time"], dtype="object"), format="%Y-%m-%dT%H:%M")
    except (TypeError, ValueError):
        raise fail("'hourly.time' holds other than local times YYYY-MM-DDTHH:MM") from None
    request = payload.request
    columns, leads = list(request["columns"]), int(request["leads"])
    first, last = pd.Timestamp(request["issued_from"]), pd.Timestamp(request["issued_to"])
    units = data.get("hourly_units") or {}
    variables = list(dict.fromkeys(DAILY[c][0] for c in columns))
    parts = []
    for lead in range(1, leads + 1) if request["api"] == PREVIOUS_RUNS else [0]:
        values = pd.DataFrame(
            {v: _hourly(hourly, units, _name(v, lead), v, len(days), fail) for v in variables}
        )
        by_day = values.groupby(days.dt.normalize().to_numpy())
        counts = by_day.count()
        complete = counts.ge(MIN_HOURS) & counts.eq(by_day.size(), axis=0)
        daily = pd.DataFrame(
            {c: by_day[DAILY[c][0]].agg(DAILY[c][1]).where(complete[DAILY[c][0]]) for c in columns}
        )
        dates = pd.DatetimeIndex(daily.index).as_unit("ns")
        issued = dates - pd.Timedelta(days=lead) if lead else pd.DatetimeIndex([first] * len(dates))
        daily.insert(0, schema.ISSUED, issued.as_unit("ns"))
        daily.insert(0, schema.DATE, dates)
        parts.append(daily.reset_index(drop=True))
    out = pd.concat(parts, ignore_index=True)
    ahead = (out[schema.DATE] - out[schema.ISSUED]).dt.days
    keep = out[schema.ISSUED].between(first, last) & ahead.between(1, leads)
    return out.loc[keep].reset_index(drop=True)


def _hourly(
    hourly: dict[str, Any],
    units: dict[str, Any],
    name: str,
    variable: str,
    size: int,
    fail: Callable[[str], ParseError],
) -> pd.Series:
    values = hourly.get(name)
    if not isinstance(values, list):
        raise fail(f"'hourly' has no '{name}' array (has: {', '.join(hourly)})")
    if len(values) != size:
        raise fail(f"'hourly.{name}' has {len(values)} values but 'hourly.time' has {size}")
    unit = units.get(name)
    if unit is not None and unit != _UNITS[variable]:
        raise fail(f"'{name}' is in {unit}, expected {_UNITS[variable]}")
    try:
        return pd.Series(values, dtype="float64")
    except (TypeError, ValueError):
        raise fail(f"'hourly.{name}' holds values that are not numbers") from None
