"""The file-drop path of ingest: every file not taken before, read whole and landed once.

A dropped file gives all its rows up to the as-of date, old dates included (a re-delivered file
is a revision); :mod:`pipeline_lib.store.manifest` records each file taken, with its stamp, once
its batch is committed. An exogenous data set's file keeps only the values its covariates use,
as issued by the as-of date.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import CovariateConfig, ExogenousConfig, Settings
from pipeline_lib.ingest.batch import (
    Batch,
    concat_frames,
    covariate_reach,
    in_window,
    make_batch,
    parse_rows,
    payload_notes,
    series_of,
)
from pipeline_lib.ingest.covariate_values import covariate_frame, covariate_rows
from pipeline_lib.ingest.sources import FileDropSource, Payload
from pipeline_lib.ingest.sources.parse import parse_exogenous
from pipeline_lib.store import land_raw
from pipeline_lib.store.manifest import FileStamp, read_manifest


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


def ingest_files(
    settings: Settings,
    source: FileDropSource,
    as_of: dt.date,
    start: dt.date | None,
    today: dt.date,
) -> Batch:
    """The file-drop path of :func:`~pipeline_lib.ingest.landing.ingest_source`: new files,
    whole, each landed once."""
    window = (min(start, settings.start_date) if start else settings.start_date, as_of)
    taken = read_manifest(settings.data_dir, source.dataset, source.key)
    payloads = source.fetch(*window, taken=taken)
    raw_paths = [
        _land_once(settings.data_dir, p, taken.get(str(p.request["file"]))) for p in payloads
    ]
    series = series_of(settings, source)
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
        frames = [parse_rows(settings, source, series, p) for p in payloads]
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
    notes = payload_notes(payloads, frames)
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
    ahead = (window[0], as_of + dt.timedelta(days=covariate_reach(series)))
    data = in_window(concat_frames(frames, source.dataset), ahead, max(today, as_of))
    return make_batch(
        source, series, window, data, as_of, today, raw_paths=raw_paths, files=files,
        notes=notes, inputs=inputs,
    )  # fmt: skip


def _land_once(data_dir: str, payload: Payload, stamp: FileStamp | None) -> str:
    """Land a dropped file's bytes, unless this very content was landed when it was taken."""
    if stamp is not None and stamp.sha256 == payload.sha256:
        return stamp.raw_path
    return land_raw(data_dir, payload)
