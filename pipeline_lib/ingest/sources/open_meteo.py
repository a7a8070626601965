"""Open-Meteo daily weather (kind ``open_meteo``; weather only).

Days up to yesterday in the location's time zone come from the historical archive API
(https://archive-api.open-meteo.com/v1/archive); today and later from the forecast API
(https://api.open-meteo.com/v1/forecast, at most 16 days ahead), both asked with
``start_date``/``end_date``, ``timezone`` = the location's (``auto`` lets Open-Meteo pick it
from the coordinates), wind in m/s (``wind_speed_unit=ms``), temperatures in °C, precipitation
in mm. Each answer is landed as its raw JSON bytes (``application/json``), one payload per API.

Daily variables asked and how they map to the curated weather schema:
``temperature_2m_max`` -> temp_max, ``temperature_2m_min`` -> temp_min,
``temperature_2m_mean`` -> temp_mean, ``precipitation_sum`` -> precipitation,
``wind_speed_10m_max`` -> wind_speed (the day's maximum 10 m wind speed).

Options (``weather_source.options``):

- ``daily``: extra daily variables to ask for (kept in the raw payload, not curated).
- ``archive_url``, ``forecast_url``: other base URLs (a mirror, a self-hosted instance).
- ``credential``: the name of an API key in ``settings.credentials`` (e.g. ``open_meteo``
  set by ``PIPELINE_CREDENTIALS__OPEN_METEO``) for the commercial API; it is sent as the
  ``apikey`` parameter, the default URLs become ``customer-archive-api.open-meteo.com`` and
  ``customer-api.open-meteo.com``, and the key is never logged or recorded.
- ``archive_lag_days`` (default 0): ask the forecast API, not the archive, for the last N days
  before today (the forecast API keeps ~3 months of past days). The archive's reanalysis data
  arrive with a delay of a few days; set e.g. 5 to get those recent days from the forecast model.

With ``timezone = "auto"`` "today" is estimated from the longitude (UTC offset = longitude / 15
hours); give an IANA name for exact day boundaries.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import Location
from pipeline_lib.ingest.sources.base import ParseError, SourceError
from pipeline_lib.ingest.sources.http import HttpClient
from pipeline_lib.ingest.sources.responses import json_body
from pipeline_lib.store.raw import JSON, Payload

log = logging.getLogger(__name__)

ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"
FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
CUSTOMER_ARCHIVE_URL = "https://customer-archive-api.open-meteo.com/v1/archive"
CUSTOMER_FORECAST_URL = "https://customer-api.open-meteo.com/v1/forecast"
MAX_FORECAST_DAYS = 16
MAX_PAST_DAYS = 92

# Open-Meteo daily variable -> curated weather column.
DAILY = {
    "temperature_2m_max": "temp_max",
    "temperature_2m_min": "temp_min",
    "temperature_2m_mean": "temp_mean",
    "precipitation_sum": "precipitation",
    "wind_speed_10m_max": "wind_speed",
}
_UNITS = {
    "temp_max": "°C",
    "temp_min": "°C",
    "temp_mean": "°C",
    "precipitation": "mm",
    "wind_speed": "m/s",
}


def location_today(location: Location) -> dt.date:
    """The current date at ``location`` (``auto``: UTC offset estimated from the longitude)."""
    now = dt.datetime.now(dt.UTC)
    if location.timezone == "auto":
        return (now + dt.timedelta(hours=round(location.longitude / 15))).date()
    return now.astimezone(ZoneInfo(location.timezone)).date()


class OpenMeteoSource:
    """Daily weather for one location from Open-Meteo (see the module docstring).

    ``today`` returns the current date in the location's time zone (tests pin it).
    """

    name = "open_meteo"
    dataset = schema.WEATHER

    def __init__(
        self,
        location: Location,
        client: HttpClient | None = None,
        *,
        daily: Sequence[str] = (),
        api_key: str | None = None,
        archive_url: str | None = None,
        forecast_url: str | None = None,
        archive_lag_days: int = 0,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        if not 0 <= archive_lag_days <= MAX_PAST_DAYS:
            raise SourceError(
                f"open_meteo source for '{location.name}': archive_lag_days must be 0 to "
                f"{MAX_PAST_DAYS}, got {archive_lag_days}"
            )
        self.location = location
        self.key = location.name
        self.client = client or HttpClient()
        self.daily = [*DAILY, *(v for v in daily if v not in DAILY)]
        self._api_key = api_key
        self.archive_url = archive_url or (CUSTOMER_ARCHIVE_URL if api_key else ARCHIVE_URL)
        self.forecast_url = forecast_url or (CUSTOMER_FORECAST_URL if api_key else FORECAST_URL)
        self.archive_lag_days = archive_lag_days
        self._today = today

    def __repr__(self) -> str:  # no api key here
        return f"OpenMeteoSource({self.location.name!r}, archive_url={self.archive_url!r})"

    def today(self) -> dt.date:
        """The current date at the location."""
        return self._today() if self._today is not None else location_today(self.location)

    def plan(self, start: dt.date, end: dt.date) -> list[tuple[str, dt.date, dt.date]]:
        """Which API answers which dates: ``[("archive", s, e), ("forecast", s, e)]``."""
        today = self.today()
        split = today - dt.timedelta(days=self.archive_lag_days)  # first day of the forecast API
        last = min(end, today + dt.timedelta(days=MAX_FORECAST_DAYS - 1))
        if end > last:
            log.warning(
                "open_meteo weather for '%s': the forecast API reaches %s; not asking for %s to %s",
                self.key,
                last,
                last + dt.timedelta(days=1),
                end,
            )
        parts = []
        if start < split:
            parts.append(("archive", start, min(end, split - dt.timedelta(days=1))))
        if last >= split and last >= start:
            parts.append(("forecast", max(start, split), last))
        return parts

    def fetch(self, start: dt.date, end: dt.date) -> list[Payload]:
        """One payload per API asked (archive, forecast), raw JSON bytes."""
        return [self._get(api, s, e) for api, s, e in self.plan(start, end)]

    def fetch_forecast(self, days: int = MAX_FORECAST_DAYS) -> list[Payload]:
        """The forecast for today and the ``days - 1`` days after it (at most 16 in all)."""
        today = self.today()
        days = max(1, min(days, MAX_FORECAST_DAYS))
        return [self._get("forecast", today, today + dt.timedelta(days=days - 1))]

    def _get(self, api: str, start: dt.date, end: dt.date) -> Payload:
        url = self.archive_url if api == "archive" else self.forecast_url
        params: dict[str, Any] = {
            "latitude": self.location.latitude,
            "longitude": self.location.longitude,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "daily": ",".join(self.daily),
            "timezone": self.location.timezone,
            "wind_speed_unit": "ms",
            "temperature_unit": "celsius",
            "precipitation_unit": "mm",
        }
        if self._api_key:
            params["apikey"] = self._api_key
        context = f"open_meteo {api} weather for location '{self.key}', {start} to {end}"
        response = self.client.get(url, params, context=context)
        name = f"open_meteo-{api}-{self.key}-{start}-{end}.json"
        return response.payload(
            self, JSON, name, api=api, start=start.isoformat(), end=end.isoformat()
        )


def open_meteo_answer(payload: Payload) -> tuple[dict[str, Any], Callable[[str], ParseError]]:
    """The JSON object of an Open-Meteo answer, and a maker of errors naming the payload.

    Raises :class:`ParseError` for invalid JSON, a value that is not an object, or an error
    answer (``{"error": true, "reason": ...}``)."""
    data = json_body(payload)

    def fail(problem: str) -> ParseError:
        return ParseError(f"{payload.describe()}: {problem}")

    if not isinstance(data, dict):
        raise fail(f"expected a JSON object, got {type(data).__name__}")
    if data.get("error"):
        raise fail(f"Open-Meteo answered with an error: {data.get('reason', '(no reason given)')}")
    return data, fail


def read_open_meteo_json(payload: Payload) -> pd.DataFrame:
    """An Open-Meteo daily answer as a frame of curated column names (values untyped).

    Raises :class:`ParseError` for invalid JSON, an error answer, a missing ``daily`` object,
    a missing variable, arrays of unequal length, or units other than the ones asked for.
    """
    data, fail = open_meteo_answer(payload)
    daily = data.get("daily")
    if not isinstance(daily, dict):
        found = ", ".join(map(str, data)) or "none"
        raise fail(f"no 'daily' object in the response (keys: {found})")
    times = daily.get("time")
    if not isinstance(times, list):
        raise fail("'daily' has no 'time' array")
    columns: dict[str, list[Any]] = {schema.DATE: times}
    for variable, column in DAILY.items():
        values = daily.get(variable)
        if column == "temp_mean" and values is None:
            continue  # optional: derived from max and min by the parser
        if not isinstance(values, list):
            raise fail(f"'daily' has no '{variable}' array (has: {', '.join(daily)})")
        if len(values) != len(times):
            raise fail(
                f"'daily.{variable}' has {len(values)} values but 'daily.time' has {len(times)}"
            )
        columns[column] = values
    units = data.get("daily_units") or {}
    for variable, column in DAILY.items():
        unit = units.get(variable)
        if column in columns and unit is not None and unit != _UNITS[column]:
            raise fail(f"'{variable}' is in {unit}, expected {_UNITS[column]}")
    return pd.DataFrame({k: pd.Series(v, dtype="object") for k, v in columns.items()})
