"""Ingest: fetch what is new from each source, land the raw bytes, parse them into a batch.

Nothing here touches curated data: a batch is committed only after it passes validation
(:mod:`pipeline_lib.curate`). Watermarks are derived from curated data, so a run that dies
anywhere before the commit simply fetches the same dates again next time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.sources import (
    FileDropSource,
    Payload,
    Source,
    parse_payload,
    price_source,
    weather_source,
)
from pipeline_lib.sources.parse import IGNORED_COLUMNS, NO_ROWS
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

    @property
    def origin(self) -> str:
        """Where the rows came from, e.g. ``source 'file': b.csv, c.csv``."""
        names = f": {', '.join(self.inputs)}" if self.inputs else ""
        return f"source '{self.source}'{names}"

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.key}"


def sources_for(settings: Settings) -> list[Source]:
    """Every price source in the config, then the weather source of each location used."""
    prices = [price_source(s, settings) for s in settings.series]
    weather = [weather_source(settings, loc) for loc in settings.locations]
    return [*prices, *weather]


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
    key_col = schema.SERIES_ID if source.dataset == schema.PRICES else schema.LOCATION
    marks = watermarks(paths.curated_dir(settings.data_dir, source.dataset), key_col)
    window = fetch_window(
        marks.get(source.key),
        settings.start_date,
        as_of,
        settings.ingest.revision_lookback_days,
        start,
    )
    if window is None:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        return Batch(source.dataset, source.key, source.name, (as_of, as_of), empty)
    payloads = source.fetch(*window)
    raw_paths = [land_raw(settings.data_dir, p) for p in payloads]
    frames = [parse_payload(p, _columns(settings, source)) for p in payloads]
    data = _in_window(_concat(frames, columns), window, max(today, as_of))
    notes = _notes(payloads, frames)
    inputs = [p.name for p in payloads]
    return Batch(
        source.dataset, source.key, source.name, window, data, raw_paths, [], notes, inputs
    )


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
    frames = [parse_payload(p, _columns(settings, source)) for p in payloads]
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
    data = _in_window(_concat(frames, columns), window, max(today, as_of))
    notes = _notes(payloads, frames)
    inputs = [p.name for p in payloads]
    return Batch(
        source.dataset, source.key, source.name, window, data, raw_paths, files, notes, inputs
    )


def _land_once(data_dir: str, payload: Payload, stamp: FileStamp | None) -> str:
    """Land a dropped file's bytes, unless this very content was landed when it was taken."""
    if stamp is not None and stamp.sha256 == payload.sha256:
        return stamp.raw_path
    return land_raw(data_dir, payload)
