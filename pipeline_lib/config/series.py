"""What one series is and where its data comes from: its source (:class:`SourceSpec`), its
weather location (:class:`Location`), its covariates (:class:`CovariateConfig`) and the
covariate data sets apart from the prices (:class:`ExogenousConfig`), gathered in
:class:`SeriesConfig`; and the bundled sample (``SAMPLE_START``/``SAMPLE_END``, ``SEATTLE``,
:func:`default_series`), the series configured when a config file names none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

SAMPLE_START = dt.date(2012, 1, 1)
SAMPLE_END = dt.date(2015, 12, 31)


class Location(BaseModel):
    """A weather location a series is joined with; days are taken in its time zone."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = Field(default="auto", description="IANA name, or auto (from the coordinates)")


class SourceSpec(BaseModel):
    """Where a data set comes from: a source kind and its options.

    kind ``sample``: the bundled sample data (options: ``symbol``).
    kind ``file``: a CSV or Parquet file, or a folder of them, on any fsspec URL
    (options: ``path``; optional ``columns``, a mapping from the file's names to ours).
    kind ``open_meteo``: Open-Meteo's historical archive and forecast APIs (weather).
    kind ``stooq``: Stooq's daily CSV endpoint (prices; options: ``symbol``).
    kind ``yahoo_chart``: Yahoo Finance's JSON chart API (prices; options: ``symbol``).
    Each source's options are documented in the README and in its module.
    """

    kind: Literal["sample", "file", "open_meteo", "stooq", "yahoo_chart"] = "sample"
    options: dict[str, Any] = Field(default_factory=dict)


class CovariateConfig(BaseModel):
    """A named input of a series beyond its price (see pipeline_lib.features.spec).

    ``role`` past: observed up to the forecast date (actual load). ``role`` future: known for
    target dates up to ``known_ahead`` days after the forecast date (day-ahead load, wind and
    solar forecasts, known the day before delivery: ``known_ahead = 1``).
    ``source`` series: a column of the series' own price file (``column``, default ``name``);
    a row dated d holds the value for d, issued ``known_ahead`` days before d (a past
    covariate's value is issued on its own date). ``source`` holidays: 1.0 on the public
    holidays of ``options.country`` (ISO code; ``options.subdivision`` optional, e.g. a German
    state) from the ``holidays`` package, else 0.0; a future covariate, known as far ahead as
    ``known_ahead`` says (the horizon, typically). ``source`` exogenous: a column (``column``,
    default ``name``) of the ``[[exogenous]]`` data set ``options.dataset``, the rows whose key
    is ``options.key`` (default the series id); its values carry their issue time when the data
    set has one. ``source`` weather: ``column`` (one of ``schema.WEATHER_VALUES``) of the weather
    at the series' ``weather`` location: past, the observed weather of day d, issued on d;
    future (``known_ahead`` 1 to 7), Open-Meteo's forecast of d issued on d - h for h up to
    ``known_ahead`` (options: see pipeline_lib.ingest.sources.open_meteo_runs).
    ``missing``: what a value that tonight's forecast needs but that has not arrived does.
    ``required`` (the default) stops the run with an error naming the series, the covariate
    and the dates; ``mask`` records a warning and the model sees the value as unknown (an
    availability mask, never a made-up value).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="feature name, e.g. load_forecast")
    role: Literal["past", "future"]
    source: Literal["series", "holidays", "exogenous", "weather"] = Field(
        default="series",
        description="series: a column of the series' own price file; holidays: public holidays; "
        "exogenous: a column of an [[exogenous]] data set; weather: a weather variable of the "
        "series' location (past: observed; future: forecasts as issued)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="holidays: country (ISO code), subdivision (optional); exogenous: dataset "
        "(its name), key (the data set's key for this series, default the series id); weather "
        "(future): models, previous_runs_url, forecast_url, credential, since",
    )
    column: str | None = Field(default=None, description="the file's column; default: name")
    known_ahead: int = Field(
        default=0, ge=0, le=366, description="future: days ahead of the forecast date known"
    )
    missing: Literal["required", "mask"] = "required"

    @model_validator(mode="after")
    def _role_reach(self) -> CovariateConfig:
        from pipeline_lib.schema import FEATURE_COLUMNS, PRICE_COLUMNS

        if self.role == "future" and self.known_ahead < 1:
            raise ValueError(f"future covariate {self.name!r} needs known_ahead >= 1")
        if self.role == "past" and self.known_ahead != 0:
            raise ValueError(f"past covariate {self.name!r} cannot have known_ahead")
        if self.name in {*FEATURE_COLUMNS, *PRICE_COLUMNS, "issued"}:
            raise ValueError(f"covariate name {self.name!r} is a built-in column")
        if self.source == "holidays":
            from pipeline_lib.features.holidays import check_calendar

            if self.role != "future":
                raise ValueError(f"holidays covariate {self.name!r} must have role future")
            unknown = sorted(set(self.options) - {"country", "subdivision"})
            if unknown or "country" not in self.options:
                raise ValueError(
                    f"holidays covariate {self.name!r} takes options country (required) and "
                    f"subdivision, got {sorted(self.options)}"
                )
            check_calendar(str(self.options["country"]), self.options.get("subdivision"))
        elif self.source == "exogenous":
            unknown = sorted(set(self.options) - {"dataset", "key"})
            if unknown or "dataset" not in self.options:
                raise ValueError(
                    f"exogenous covariate {self.name!r} takes options dataset (required) and "
                    f"key, got {sorted(self.options)}"
                )
        elif self.source == "weather":
            self._check_weather()
        elif self.options:
            raise ValueError(f"covariate {self.name!r} (source series) takes no options")
        return self

    def _check_weather(self) -> None:
        from pipeline_lib.ingest.sources.open_meteo_runs import MAX_LEAD_DAYS, check_options
        from pipeline_lib.schema import WEATHER_VALUES

        if self.file_column not in WEATHER_VALUES:
            raise ValueError(
                f"weather covariate {self.name!r} needs column = one of "
                f"{', '.join(WEATHER_VALUES)}, got {self.file_column!r}"
            )
        if self.role == "past" and self.options:
            raise ValueError(f"past weather covariate {self.name!r} takes no options")
        if self.role == "future" and self.known_ahead > MAX_LEAD_DAYS:
            raise ValueError(
                f"future weather covariate {self.name!r}: forecasts as issued reach "
                f"{MAX_LEAD_DAYS} days ahead (Open-Meteo previous runs), got known_ahead "
                f"{self.known_ahead}"
            )
        try:
            check_options(self.options)
        except ValueError as exc:
            raise ValueError(f"weather covariate {self.name!r}: {exc}") from None

    @property
    def file_column(self) -> str:
        return self.column or self.name


class ExogenousConfig(BaseModel):
    """A data set of covariates apart from the prices: rows keyed by ``key_column`` and
    ``date``, one column per variable, e.g. weather forecasts per zone or a gas price.

    ``issued_column`` names the column of the time each value was issued (a forecast's run):
    a row issued after a run's date is later data, and a value issued twice for one day is
    kept twice, each visible from its issue time on (a revised forecast never changes what an
    earlier night saw). Without it, a value for day d counts as issued ``known_ahead`` days
    before d (the declaring covariate's). Covariates pick their column and key from it
    (``source = "exogenous"``). File drops (kind ``file``) only, for now.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", description="the data set's name")
    source: SourceSpec
    key_column: str = Field(default="key", description="the column of the key (a zone, a hub)")
    issued_column: str | None = Field(default=None, description="the column of the issue time")

    @field_validator("source")
    @classmethod
    def _file_only(cls, v: SourceSpec) -> SourceSpec:
        if v.kind != "file":
            raise ValueError(
                f"an exogenous data set is read from file drops (kind 'file'), got {v.kind!r}"
            )
        return v


class SeriesConfig(BaseModel):
    """One price series to forecast."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", description="series id, used in paths and SQL")
    source: SourceSpec = Field(default_factory=SourceSpec)
    weather: Location | None = Field(default=None, description="weather location joined in")
    frequency: Literal["B", "D"] = Field(
        default="B", description="B: business days (markets), D: every calendar day"
    )
    calendar: str | None = Field(
        default=None,
        description="frequency B only: an exchange calendar of exchange_calendars (XNYS, XLON, "
        "XETR, ...) whose sessions are the series' dates, so its holidays are never forecast; "
        "none: pandas business days (weekdays)",
    )
    covariates: list[CovariateConfig] = Field(
        default_factory=list, description="named inputs beyond the price, each with a role"
    )
    negative_prices: bool = Field(
        default=False,
        description="prices may be zero or negative (electricity): validation then checks "
        "changes, not ratios, and the models work on levels, not logs",
    )

    @field_validator("covariates")
    @classmethod
    def _unique_covariates(cls, v: list[CovariateConfig]) -> list[CovariateConfig]:
        names = [c.name for c in v]
        if len(set(names)) != len(names):
            raise ValueError(f"covariate names must be unique per series, got {names}")
        return v

    @model_validator(mode="after")
    def _calendar_business(self) -> SeriesConfig:
        if self.calendar is not None:
            from pipeline_lib.features.calendar import check_exchange

            if self.frequency != "B":
                raise ValueError(
                    f"series {self.id!r}: calendar {self.calendar!r} needs frequency 'B', "
                    f"got {self.frequency!r}"
                )
            check_exchange(self.calendar)
        return self

    @model_validator(mode="after")
    def _weather_location(self) -> SeriesConfig:
        lacking = [c.name for c in self.covariates if c.source == "weather"]
        if lacking and self.weather is None:
            raise ValueError(
                f"series {self.id!r}: weather covariate(s) {lacking} read the weather of the "
                "series' location, but it has none (set weather = { name, latitude, "
                "longitude, timezone })"
            )
        return self

    @property
    def dates_frequency(self) -> str:
        """What :func:`pipeline_lib.features.calendar.future_dates` takes for this series: the
        exchange calendar code when one is set, else the frequency."""
        return self.calendar or self.frequency


SEATTLE = Location(name="seattle", latitude=47.6062, longitude=-122.3321)


def default_series() -> list[SeriesConfig]:
    """The bundled sample: four real daily price series, joined with Seattle's weather, on the
    New York Stock Exchange's sessions. WTI (NYMEX spot) too: its sample has a price on every
    XNYS session of 2012-2015 and on two more days (2012-10-29/30, when Hurricane Sandy closed
    the NYSE), while exchange_calendars' NYMEX calendar (CMES, CME Globex) trades on most US
    holidays, which the sample skips."""
    return [
        SeriesConfig(
            id=symbol,
            source=SourceSpec(kind="sample", options={"symbol": symbol}),
            weather=SEATTLE,
            calendar="XNYS",
        )
        for symbol in ("SP500", "NASDAQ", "MSFT", "WTI")
    ]
