"""Sources of raw data: each returns :class:`Payload` bytes; :func:`parse_payload` types them.

Pick a source from config with :func:`price_source` / :func:`weather_source`.
"""

from __future__ import annotations

from pipeline_lib import schema
from pipeline_lib.config import Location, SeriesConfig, SourceSpec
from pipeline_lib.sources.base import CSV, PARQUET, ParseError, Payload, Source, SourceError
from pipeline_lib.sources.files import FileDropSource
from pipeline_lib.sources.parse import filter_dates, parse_payload
from pipeline_lib.sources.sample import SampleSource


def _build(spec: SourceSpec, dataset: str, key: str) -> Source:
    if spec.kind == "sample":
        return SampleSource(dataset, key, symbol=spec.options.get("symbol") or key)
    if spec.kind == "file":
        path = spec.options.get("path")
        if not path:
            raise SourceError(f"{dataset} source for '{key}': kind 'file' needs options.path")
        return FileDropSource(dataset, key, path, columns=spec.options.get("columns"))
    raise SourceError(f"{dataset} source for '{key}': unknown kind '{spec.kind}'")


def price_source(series: SeriesConfig) -> Source:
    """The source of one price series, from its config."""
    return _build(series.source, schema.PRICES, series.id)


def weather_source(spec: SourceSpec, location: Location) -> Source:
    """The weather source for one location (``spec`` is ``Settings.weather_source``)."""
    return _build(spec, schema.WEATHER, location.name)


__all__ = [
    "CSV",
    "PARQUET",
    "FileDropSource",
    "ParseError",
    "Payload",
    "SampleSource",
    "Source",
    "SourceError",
    "filter_dates",
    "parse_payload",
    "price_source",
    "weather_source",
]
