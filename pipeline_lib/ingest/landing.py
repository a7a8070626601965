"""Ingest: which sources a night reads, and the fetch of one: land the raw bytes, then parse.

Nothing here touches curated data: a batch is committed only after it passes validation
(:mod:`pipeline_lib.ingest.curate`). Watermarks are derived from curated data, so a run that dies
anywhere before the commit simply fetches the same dates again next time. A file drop is read
by :mod:`.file_drops`, the weather forecasts by :mod:`.weather_forecasts`; what a fetch gives is
a :class:`~pipeline_lib.ingest.batch.Batch`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.ingest.batch import (
    Batch,
    concat_frames,
    covariate_reach,
    fetch_window,
    in_window,
    make_batch,
    parse_rows,
    payload_notes,
    row_columns,
    series_of,
)
from pipeline_lib.ingest.file_drops import ingest_files
from pipeline_lib.ingest.sources import (
    FileDropSource,
    OpenMeteoRunsSource,
    Source,
    exogenous_source,
    price_source,
    weather_forecast_sources,
    weather_source,
)
from pipeline_lib.ingest.weather_forecasts import ingest_weather_forecasts
from pipeline_lib.store import land_raw, watermarks


def sources_for(settings: Settings) -> list[Source]:
    """Every price source in the config, the weather source of each location used, then the
    source of each exogenous data set a covariate uses, then one source of weather forecasts
    per location with future weather covariates."""
    prices = [price_source(s, settings) for s in settings.series]
    weather = [weather_source(settings, loc) for loc in settings.locations]
    used = {
        c.options["dataset"]
        for s in settings.series
        for c in s.covariates
        if c.source == "exogenous"
    }
    exogenous = [exogenous_source(e, settings) for e in settings.exogenous if e.name in used]
    return [*prices, *weather, *exogenous, *weather_forecast_sources(settings)]


def split_sources(sources: list[Source]) -> tuple[list[FileDropSource], list[Source]]:
    """``(file drops, live sources)``, each in the order given: a file drop reads its folder
    (local work, read together), a live source calls an API (each retried on its own)."""
    drops = [s for s in sources if isinstance(s, FileDropSource)]
    return drops, [s for s in sources if not isinstance(s, FileDropSource)]


def in_source_order(sources: list[Source], batches: list[Batch]) -> list[Batch]:
    """``batches`` in the order of the ``sources`` they came from (by data set and key)."""
    rank = {(s.dataset, s.key): i for i, s in enumerate(sources)}
    return sorted(batches, key=lambda b: rank.get((b.dataset, b.key), len(rank)))


def ingest_source(
    settings: Settings,
    source: Source,
    as_of: dt.date,
    start: dt.date | None = None,
    today: dt.date | None = None,
) -> Batch:
    """Fetch one source's new dates (see :func:`fetch_window`; ``start`` for a backfill's exact
    range), land every payload in raw/ before parsing anything, and parse them.

    A file drop is read whole instead: every file not taken before (see
    :mod:`pipeline_lib.store.manifest`) gives all its rows up to ``as_of``, old dates included
    (a re-delivered file is a revision).

    Rows dated after ``as_of`` but not after ``today`` are later data (a backfill of an old date)
    and are left for a later run; rows dated after ``today`` are impossible and stay in the batch,
    so validation rejects them.
    """
    today = today or dt.date.today()
    if isinstance(source, FileDropSource):
        return ingest_files(settings, source, as_of, start, today)
    if isinstance(source, OpenMeteoRunsSource):  # forecasts as issued, of future covariates
        return ingest_weather_forecasts(settings, source, as_of, start)
    if source.dataset == schema.COVARIATES:
        raise ValueError(f"exogenous data set {source.key!r}: only file drops are read")
    key_col = schema.SERIES_ID if source.dataset == schema.PRICES else schema.LOCATION
    marks = watermarks(paths.curated_dir(settings.data_dir, source.dataset), key_col)
    window = fetch_window(
        marks.get(source.key),
        settings.start_date,
        as_of,
        settings.ingest.revision_lookback_days,
        start,
    )
    series = series_of(settings, source)
    if window is None:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in row_columns(source.dataset)})
        signed = bool(series is not None and series.negative_prices)
        return Batch(source.dataset, source.key, source.name, (as_of, as_of), empty, signed=signed)
    # the days ahead whose covariates are known tonight (day-ahead forecasts) are asked too
    ahead = (window[0], window[1] + dt.timedelta(days=covariate_reach(series)))
    payloads = source.fetch(*ahead)
    raw_paths = [land_raw(settings.data_dir, p) for p in payloads]
    frames = [parse_rows(settings, source, series, p) for p in payloads]
    data = in_window(concat_frames(frames, source.dataset), ahead, max(today, as_of))
    notes = payload_notes(payloads, frames)
    inputs = [p.name for p in payloads]
    return make_batch(
        source, series, window, data, as_of, today, raw_paths=raw_paths, notes=notes,
        inputs=inputs,
    )  # fmt: skip
