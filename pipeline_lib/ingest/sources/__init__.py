"""Sources of raw data: each returns :class:`Payload` bytes; :func:`parse_payload` types them.

Pick a source from config with :func:`price_source` / :func:`weather_source`. Kinds: ``sample``,
``file`` (:mod:`.files`), ``open_meteo`` (:mod:`.open_meteo`), ``stooq`` (:mod:`.stooq`) and
``yahoo_chart`` (:mod:`.yahoo`); each module's docstring lists its options. Future weather
covariates come from :func:`weather_forecast_sources` (:mod:`.open_meteo_runs`).
"""

from __future__ import annotations

import datetime as dt

from pipeline_lib import schema
from pipeline_lib.config import (
    CovariateConfig,
    ExogenousConfig,
    Location,
    SeriesConfig,
    Settings,
    SourceSpec,
)
from pipeline_lib.ingest.sources.base import ParseError, Source, SourceError
from pipeline_lib.ingest.sources.files import FileDropSource
from pipeline_lib.ingest.sources.http import HttpClient
from pipeline_lib.ingest.sources.open_meteo import OpenMeteoSource
from pipeline_lib.ingest.sources.open_meteo_runs import SINCE, OpenMeteoRunsSource
from pipeline_lib.ingest.sources.parse import filter_dates, parse_payload
from pipeline_lib.ingest.sources.sample import SampleSource
from pipeline_lib.ingest.sources.stooq import StooqSource
from pipeline_lib.ingest.sources.yahoo import YahooChartSource
from pipeline_lib.store.raw import CSV, JSON, PARQUET, Payload

_DATASETS = {"open_meteo": schema.WEATHER, "stooq": schema.PRICES, "yahoo_chart": schema.PRICES}
_OPTIONS = {
    "sample": {"symbol"},
    "file": {"path", "columns", "date_format"},
    "open_meteo": {"daily", "archive_url", "forecast_url", "credential", "archive_lag_days"},
    "stooq": {"symbol", "base_url"},
    "yahoo_chart": {"symbol", "base_url"},
}


def _credential(spec: SourceSpec, settings: Settings, where: str) -> str | None:
    """The secret named by ``options.credential`` (matched ignoring case), or None."""
    name = spec.options.get("credential")
    if not name:
        return None
    found = {k.lower(): v for k, v in settings.credentials.items()}.get(str(name).lower())
    if found is None:
        raise SourceError(
            f"{where}: credential '{name}' is not in settings.credentials "
            f"(set PIPELINE_CREDENTIALS__{str(name).upper()})"
        )
    return found.get_secret_value()


def _date_format(spec: SourceSpec, where: str) -> str | None:
    """``options.date_format`` checked now, so a typo fails before anything is fetched."""
    pattern = spec.options.get("date_format")
    if pattern is None:
        return None
    valid = isinstance(pattern, str) and "%" in pattern
    try:  # a pattern that cannot read back what it writes would refuse every file
        sample = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
        if valid:
            dt.datetime.strptime(sample.strftime(pattern), pattern)
    except ValueError:
        valid = False
    if not valid:
        raise SourceError(
            f"{where}: options.date_format {pattern!r} is not a strftime pattern such as "
            '"%d/%m/%Y" (day first) or "%m/%d/%Y" (month first)'
        )
    return pattern


def _build(
    spec: SourceSpec,
    dataset: str,
    key: str,
    settings: Settings,
    location: Location | None = None,
) -> Source:
    where = f"{dataset} source for '{key}'"
    opts = spec.options
    unknown = sorted(set(opts) - _OPTIONS.get(spec.kind, set()))
    if unknown:  # a typo would otherwise be ignored silently
        known = ", ".join(sorted(_OPTIONS.get(spec.kind, set())))
        raise SourceError(
            f"{where}: unknown option(s) {unknown} for kind '{spec.kind}'; known: {known}"
        )
    if spec.kind == "sample":
        return SampleSource(dataset, key, symbol=opts.get("symbol") or key)
    if spec.kind == "file":
        path = opts.get("path")
        if not path:
            raise SourceError(f"{where}: kind 'file' needs options.path")
        return FileDropSource(
            dataset,
            key,
            path,
            columns=opts.get("columns"),
            max_bytes=settings.ingest.max_file_bytes,
            date_format=_date_format(spec, where),
        )
    if spec.kind in _DATASETS and _DATASETS[spec.kind] != dataset:
        raise SourceError(f"{where}: kind '{spec.kind}' serves {_DATASETS[spec.kind]} only")
    client = HttpClient(settings.http)
    if spec.kind == "open_meteo":
        if location is None:
            raise SourceError(f"{where}: kind 'open_meteo' needs a location")
        return OpenMeteoSource(
            location,
            client,
            daily=opts.get("daily") or (),
            api_key=_credential(spec, settings, where),
            archive_url=opts.get("archive_url"),
            forecast_url=opts.get("forecast_url"),
            archive_lag_days=int(opts.get("archive_lag_days", 0)),
        )
    if spec.kind == "stooq":
        return StooqSource(key, opts.get("symbol"), client, base_url=opts.get("base_url"))
    if spec.kind == "yahoo_chart":
        return YahooChartSource(key, opts.get("symbol"), client, base_url=opts.get("base_url"))
    raise SourceError(f"{where}: unknown kind '{spec.kind}'")


def price_source(series: SeriesConfig, settings: Settings) -> Source:
    """The source of one price series, from its config (``settings``: HTTP and credentials)."""
    return _build(series.source, schema.PRICES, series.id, settings)


def exogenous_source(spec: ExogenousConfig, settings: Settings) -> Source:
    """The file drop of one exogenous covariate data set (its rows become curated covariates,
    ``schema.COVARIATES``, under the data set's name)."""
    return _build(spec.source, schema.COVARIATES, spec.name, settings)


def weather_source(settings: Settings, location: Location) -> Source:
    """The weather source (``settings.weather_source``) for one location."""
    return _build(settings.weather_source, schema.WEATHER, location.name, settings, location)


def weather_forecast_covariates(
    settings: Settings,
) -> dict[str, list[tuple[SeriesConfig, CovariateConfig]]]:
    """The future weather covariates (``source = "weather"``) by location name."""
    found: dict[str, list[tuple[SeriesConfig, CovariateConfig]]] = {}
    for s in settings.series:
        for c in s.covariates:
            if c.source == "weather" and c.role == "future" and s.weather is not None:
                found.setdefault(s.weather.name, []).append((s, c))
    return found


def weather_forecast_sources(settings: Settings) -> list[Source]:
    """One source of weather forecasts as issued per location with future weather covariates
    (:class:`OpenMeteoRunsSource`): the columns they read, as many days ahead as the longest
    ``known_ahead``, the options of the covariates (the same for all of a location's)."""
    sources: list[Source] = []
    for name, uses in weather_forecast_covariates(settings).items():
        location, opts = uses[0][0].weather, uses[0][1].options
        if location is None:  # never: grouped by it
            continue
        where = f"weather forecasts for location '{name}'"
        sources.append(
            OpenMeteoRunsSource(
                location,
                [c.file_column for _, c in uses],
                max(c.known_ahead for _, c in uses),
                HttpClient(settings.http),
                previous_runs_url=opts.get("previous_runs_url"),
                forecast_url=opts.get("forecast_url"),
                api_key=_credential(SourceSpec(kind="open_meteo", options=opts), settings, where),
                models=opts.get("models"),
                since=dt.date.fromisoformat(str(opts["since"])) if "since" in opts else SINCE,
            )
        )
    return sources


__all__ = [
    "CSV",
    "PARQUET",
    "FileDropSource",
    "exogenous_source",
    "HttpClient",
    "JSON",
    "OpenMeteoRunsSource",
    "OpenMeteoSource",
    "ParseError",
    "Payload",
    "SampleSource",
    "Source",
    "SourceError",
    "StooqSource",
    "YahooChartSource",
    "filter_dates",
    "parse_payload",
    "price_source",
    "weather_forecast_covariates",
    "weather_forecast_sources",
    "weather_source",
]
