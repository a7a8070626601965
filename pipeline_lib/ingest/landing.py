"""Ingest: fetch what is new from each source, land the raw bytes, parse them into a batch.

Nothing here touches curated data: a batch is committed only after it passes validation
(:mod:`pipeline_lib.ingest.curate`). Watermarks are derived from curated data, so a run that dies
anywhere before the commit simply fetches the same dates again next time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import CovariateConfig, ExogenousConfig, SeriesConfig, Settings
from pipeline_lib.ingest.covariate_values import covariate_frame, covariate_rows
from pipeline_lib.ingest.sources import (
    FileDropSource,
    OpenMeteoRunsSource,
    Payload,
    Source,
    exogenous_source,
    parse_payload,
    price_source,
    weather_forecast_sources,
    weather_source,
)
from pipeline_lib.ingest.sources.parse import IGNORED_COLUMNS, NO_ROWS, parse_exogenous
from pipeline_lib.store import land_raw, watermarks
from pipeline_lib.store.manifest import FileStamp, read_manifest

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """One fetch of one data set for one key (series or location), parsed but not yet curated."""

    dataset: str
    key: str
    source: str
    window: tuple[dt.date, dt.date]
    data: pd.DataFrame
    raw_paths: list[str] = field(default_factory=list)
    files: list[tuple[str, FileStamp]] = field(default_factory=list)
    """File drops only: each file taken (URL, stamp), recorded once the batch is committed."""
    notes: list[str] = field(default_factory=list)
    """What a person should know but that does not stop the run (e.g. columns ignored)."""
    inputs: list[str] = field(default_factory=list)
    """The names of the payloads the rows came from (files, API answers)."""
    covariates: pd.DataFrame | None = None
    """Prices only: the declared covariates of the rows, long (``schema.COVARIATE_COLUMNS``),
    issued on or before the as-of date; validated and committed with the batch."""
    signed: bool = False
    """Prices that may be zero or negative (``SeriesConfig.negative_prices``)."""

    @property
    def origin(self) -> str:
        """Where the rows came from, e.g. ``source 'file': b.csv, c.csv``."""
        names = f": {', '.join(self.inputs)}" if self.inputs else ""
        return f"source '{self.source}'{names}"

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.key}"


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


def _uses(settings: Settings, dataset: str) -> list[tuple[str, CovariateConfig, str]]:
    """The covariates reading exogenous ``dataset``: (series id, covariate, key in the data)."""
    return [
        (s.id, c, str(c.options.get("key", s.id)))
        for s in settings.series
        for c in s.covariates
        if c.source == "exogenous" and c.options["dataset"] == dataset
    ]


def exogenous_values(
    settings: Settings, spec: ExogenousConfig, frame: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    """The values of a parsed exogenous file (see ``parse_exogenous``) that covariates use,
    long (``schema.COVARIATE_COLUMNS``), issued on or before ``as_of``: a value without an
    issue time counts as issued ``known_ahead`` days before its date. Empty values are not
    stored."""
    parts = []
    dates = pd.to_datetime(frame[schema.DATE])
    for series_id, c, key in _uses(settings, spec.name):
        issued = pd.to_datetime(frame[schema.ISSUED]).fillna(
            dates - pd.Timedelta(days=c.known_ahead)
        )
        keep = (frame["key"] == key) & (issued <= pd.Timestamp(as_of))
        parts.append(
            covariate_rows(
                series_id, c.name, dates[keep], issued[keep], frame.loc[keep, c.file_column]
            )
        )
    # a value delivered again with the same issue time (a re-delivered file): the last wins
    return covariate_frame(parts, unique=True)


def fetch_window(
    watermark: dt.date | None,
    start_date: dt.date,
    as_of: dt.date,
    revision_lookback_days: int = 0,
    start: dt.date | None = None,
) -> tuple[dt.date, dt.date] | None:
    """The dates to ask a source for, or None when it has nothing new to give.

    Nightly (``start`` None): from the day after the watermark (``start_date`` when nothing is
    curated yet) to ``as_of``, reaching back ``revision_lookback_days`` more for late revisions;
    nothing when the watermark already reaches ``as_of`` (a rerun fetches nothing).
    Backfill (``start`` given): exactly ``[start, as_of]``, widened back to the day after the
    watermark when curated data stops before ``start``, so no hole is left behind.
    """
    first_missing = start_date if watermark is None else watermark + dt.timedelta(days=1)
    first_missing = max(first_missing, start_date)
    if start is not None:
        begin = min(start, first_missing)
    elif first_missing > as_of:
        return None
    elif watermark is None:
        begin = first_missing
    else:
        begin = max(start_date, first_missing - dt.timedelta(days=revision_lookback_days))
    return (begin, as_of) if begin <= as_of else None


def _columns(settings: Settings, source: Source) -> dict[str, str] | None:
    if source.dataset == schema.WEATHER:
        return settings.weather_source.options.get("columns")
    series = next(s for s in settings.series if s.id == source.key)
    return series.source.options.get("columns")


def _series(settings: Settings, source: Source) -> SeriesConfig | None:
    if source.dataset != schema.PRICES:
        return None
    return next((s for s in settings.series if s.id == source.key), None)


def _reach(series: SeriesConfig | None) -> int:
    """Days after the as-of date whose rows a source is asked for: the longest
    ``known_ahead`` of the series' future covariates (0 without any)."""
    if series is None:
        return 0
    return max((c.known_ahead for c in series.covariates if c.source == "series"), default=0)


def _parse(
    settings: Settings, source: Source, series: SeriesConfig | None, payload: Payload
) -> pd.DataFrame:
    declared = (
        {c.file_column: c.name for c in series.covariates if c.source == "series"}
        if series
        else None
    )
    return parse_payload(payload, _columns(settings, source), covariates=declared)


def split_covariates(
    data: pd.DataFrame, series: SeriesConfig | None, as_of: dt.date, today: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The price rows of a parsed batch and its covariate values, long, as issued by ``as_of``.

    Price rows are those dated on or before ``as_of``, plus impossible rows (dated after both
    ``today`` and the covariates' reach) that validation must refuse; rows dated in between
    carry only the day-ahead values of the days after the as-of date. A covariate's value for
    day d is issued on ``d - known_ahead`` (a past covariate's on d itself); values issued
    after ``as_of`` are later data, left for a later run, and empty values are not stored (not
    issued: the features stage names them when a forecast needs them).
    """
    from_file = [c for c in series.covariates if c.source == "series"] if series else []
    if series is None or not from_file:
        return data, None
    dates = pd.to_datetime(data[schema.DATE])
    reach = pd.Timestamp(as_of) + pd.Timedelta(days=_reach(series))
    impossible = dates > max(pd.Timestamp(today), reach)
    prices = data.loc[(dates <= pd.Timestamp(as_of)) | impossible, schema.PRICE_COLUMNS]
    parts = []
    for c in from_file:
        issued = dates - pd.Timedelta(days=c.known_ahead)
        keep = issued <= pd.Timestamp(as_of)
        ids = data.loc[keep, schema.SERIES_ID].astype("str")
        parts.append(covariate_rows(ids, c.name, dates[keep], issued[keep], data.loc[keep, c.name]))
    return prices.reset_index(drop=True), covariate_frame(parts)


def _batch(
    source: Source,
    series: SeriesConfig | None,
    window: tuple[dt.date, dt.date],
    data: pd.DataFrame,
    as_of: dt.date,
    today: dt.date,
    **parts: object,
) -> Batch:
    """A batch of ``data`` (parsed rows in ``window`` and impossible ones) of ``series`` (None
    for weather), its covariates split off (see :func:`split_covariates`)."""
    prices, covariates = split_covariates(data, series, as_of, today)
    signed = bool(series is not None and series.negative_prices)
    return Batch(
        source.dataset,
        source.key,
        source.name,
        window,
        prices,
        covariates=covariates,
        signed=signed,
        **parts,  # type: ignore[arg-type]
    )


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
    columns = schema.PRICE_COLUMNS if source.dataset == schema.PRICES else schema.WEATHER_COLUMNS
    if isinstance(source, FileDropSource):
        return _ingest_files(settings, source, as_of, start, today)
    if isinstance(source, OpenMeteoRunsSource):  # forecasts as issued, of future covariates
        from pipeline_lib.ingest.weather_forecasts import (
            ingest_weather_forecasts,  # it imports this
        )

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
    series = _series(settings, source)
    if window is None:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        signed = bool(series is not None and series.negative_prices)
        return Batch(source.dataset, source.key, source.name, (as_of, as_of), empty, signed=signed)
    # the days ahead whose covariates are known tonight (day-ahead forecasts) are asked too
    ahead = (window[0], window[1] + dt.timedelta(days=_reach(series)))
    payloads = source.fetch(*ahead)
    raw_paths = [land_raw(settings.data_dir, p) for p in payloads]
    frames = [_parse(settings, source, series, p) for p in payloads]
    data = _in_window(_concat(frames, columns), ahead, max(today, as_of))
    notes = _notes(payloads, frames)
    inputs = [p.name for p in payloads]
    return _batch(
        source, series, window, data, as_of, today, raw_paths=raw_paths, notes=notes,
        inputs=inputs,
    )  # fmt: skip


def _notes(payloads: list[Payload], frames: list[pd.DataFrame]) -> list[str]:
    """Columns a payload had that the schema does not take (kept in raw/), and files without
    rows (accepted: nothing to commit, but a header-only file is often a failed export)."""
    notes = []
    for payload, frame in zip(payloads, frames, strict=True):
        ignored = frame.attrs.get(IGNORED_COLUMNS)
        if ignored:
            notes.append(f"{payload.describe()}: columns not in the schema ignored: {ignored}")
            log.warning(notes[-1])
        if frame.attrs.get(NO_ROWS):
            notes.append(f"{payload.describe()}: no rows ({frame.attrs[NO_ROWS]})")
            log.warning(notes[-1])
    return notes


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _in_window(data: pd.DataFrame, window: tuple[dt.date, dt.date], today: dt.date) -> pd.DataFrame:
    """Rows dated in ``window``, plus impossible rows dated after ``today`` (for validation)."""
    dates = data[schema.DATE]
    start, end, now = (pd.Timestamp(d) for d in (*window, today))
    keep = ((dates >= start) & (dates <= end)) | (dates > now)
    return data[keep].reset_index(drop=True)


def _ingest_files(
    settings: Settings,
    source: FileDropSource,
    as_of: dt.date,
    start: dt.date | None,
    today: dt.date,
) -> Batch:
    """The file-drop path of :func:`ingest_source`: new files, whole, each landed once."""
    columns = schema.PRICE_COLUMNS if source.dataset == schema.PRICES else schema.WEATHER_COLUMNS
    window = (min(start, settings.start_date) if start else settings.start_date, as_of)
    taken = read_manifest(settings.data_dir, source.dataset, source.key)
    payloads = source.fetch(*window, taken=taken)
    raw_paths = [
        _land_once(settings.data_dir, p, taken.get(str(p.request["file"]))) for p in payloads
    ]
    series = _series(settings, source)
    exogenous = None
    if source.dataset == schema.COVARIATES:
        exogenous = next((e for e in settings.exogenous if e.name == source.key), None)
    if exogenous is not None:
        wanted = sorted({c.file_column for _, c, _ in _uses(settings, exogenous.name)})
        frames = [
            parse_exogenous(p, exogenous.key_column, exogenous.issued_column, wanted)
            for p in payloads
        ]
    else:
        frames = [_parse(settings, source, series, p) for p in payloads]
    files = []
    for payload, frame, raw_path in zip(payloads, frames, raw_paths, strict=True):
        newest = frame[schema.DATE].max() if not frame.empty else None
        stamp = FileStamp(
            size=len(payload.content),
            modified=payload.request.get("modified"),
            sha256=payload.sha256,
            max_date=None if newest is None else pd.Timestamp(newest).date().isoformat(),
            taken_through=as_of.isoformat(),
            raw_path=raw_path,
        )
        files.append((str(payload.request["file"]), stamp))
    notes = _notes(payloads, frames)
    inputs = [p.name for p in payloads]
    if exogenous is not None:
        parsed = pd.concat(frames, ignore_index=True) if frames else None
        values = (
            exogenous_values(settings, exogenous, parsed, as_of)
            if parsed is not None
            else covariate_frame([])
        )
        return Batch(
            source.dataset, source.key, source.name, window, values, raw_paths, files, notes,
            inputs,
        )  # fmt: skip
    ahead = (window[0], as_of + dt.timedelta(days=_reach(series)))
    data = _in_window(_concat(frames, columns), ahead, max(today, as_of))
    return _batch(
        source, series, window, data, as_of, today, raw_paths=raw_paths, files=files,
        notes=notes, inputs=inputs,
    )  # fmt: skip


def _land_once(data_dir: str, payload: Payload, stamp: FileStamp | None) -> str:
    """Land a dropped file's bytes, unless this very content was landed when it was taken."""
    if stamp is not None and stamp.sha256 == payload.sha256:
        return stamp.raw_path
    return land_raw(data_dir, payload)
