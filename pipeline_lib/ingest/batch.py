"""One fetch of one source: the dates it asks for (:func:`fetch_window`) and the batch it gives.

A :class:`Batch` holds the parsed rows of one data set for one key, not yet curated: a price
batch's declared covariates are split off its rows (:func:`split_covariates`), each value dated by
its issue time. The live sources (:mod:`.landing`), the file drops (:mod:`.file_drops`) and the
weather forecasts (:mod:`.weather_forecasts`) all build batches here; validation and the commit
take them from there (:mod:`.gate`, :mod:`.curate`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import SeriesConfig, Settings
from pipeline_lib.ingest.covariate_values import covariate_frame, covariate_rows
from pipeline_lib.ingest.sources import Payload, Source, parse_payload
from pipeline_lib.ingest.sources.parse import IGNORED_COLUMNS, NO_ROWS
from pipeline_lib.store.manifest import FileStamp

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


def _file_columns(settings: Settings, source: Source) -> dict[str, str] | None:
    if source.dataset == schema.WEATHER:
        return settings.weather_source.options.get("columns")
    series = next(s for s in settings.series if s.id == source.key)
    return series.source.options.get("columns")


def series_of(settings: Settings, source: Source) -> SeriesConfig | None:
    if source.dataset != schema.PRICES:
        return None
    return next((s for s in settings.series if s.id == source.key), None)


def covariate_reach(series: SeriesConfig | None) -> int:
    """Days after the as-of date whose rows a source is asked for: the longest
    ``known_ahead`` of the series' future covariates (0 without any)."""
    if series is None:
        return 0
    return max((c.known_ahead for c in series.covariates if c.source == "series"), default=0)


def parse_rows(
    settings: Settings, source: Source, series: SeriesConfig | None, payload: Payload
) -> pd.DataFrame:
    declared = (
        {c.file_column: c.name for c in series.covariates if c.source == "series"}
        if series
        else None
    )
    return parse_payload(payload, _file_columns(settings, source), covariates=declared)


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
    reach = pd.Timestamp(as_of) + pd.Timedelta(days=covariate_reach(series))
    impossible = dates > max(pd.Timestamp(today), reach)
    prices = data.loc[(dates <= pd.Timestamp(as_of)) | impossible, schema.PRICE_COLUMNS]
    parts = []
    for c in from_file:
        issued = dates - pd.Timedelta(days=c.known_ahead)
        keep = issued <= pd.Timestamp(as_of)
        ids = data.loc[keep, schema.SERIES_ID].astype("str")
        parts.append(covariate_rows(ids, c.name, dates[keep], issued[keep], data.loc[keep, c.name]))
    return prices.reset_index(drop=True), covariate_frame(parts)


def make_batch(
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


def payload_notes(payloads: list[Payload], frames: list[pd.DataFrame]) -> list[str]:
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


def row_columns(dataset: str) -> list[str]:
    """The columns of a price or weather batch's rows."""
    return schema.PRICE_COLUMNS if dataset == schema.PRICES else schema.WEATHER_COLUMNS


def concat_frames(frames: list[pd.DataFrame], dataset: str) -> pd.DataFrame:
    """The parsed frames as one; without any, an empty frame of ``dataset``'s columns."""
    if frames:
        return pd.concat(frames, ignore_index=True)
    return pd.DataFrame(columns=row_columns(dataset))


def in_window(data: pd.DataFrame, window: tuple[dt.date, dt.date], today: dt.date) -> pd.DataFrame:
    """Rows dated in ``window``, plus impossible rows dated after ``today`` (for validation)."""
    dates = data[schema.DATE]
    start, end, now = (pd.Timestamp(d) for d in (*window, today))
    keep = ((dates >= start) & (dates <= end)) | (dates > now)
    return data[keep].reset_index(drop=True)
