"""The evaluation record: every window a night's backtest scored, kept for the nights after it,
so that what is published is chosen on a longer out-of-sample record than one backtest.

A night's backtest scores 40 windows (``backtest.last_n``) per series, and a rule that picks
or combines models on 40 windows picks noise as often as skill. Each window is kept the first
time a night scores it: per series, horizon bucket, window (``forecast_date``) and contest model
(``lstm`` is the champion of that night), its loss (the mean scaled error over the bucket's
horizons). That loss is never rescored: it is what the models of that night forecast out of
sample, the nearest thing to a record of shadow forecasts that a backtest gives. The selection
(:func:`pipeline_lib.forecasting.registry.select`) reads, per series and bucket, the newest
``selection.record_windows`` windows of the record and of tonight's backtest, tonight's own
rows only where the record does not hold them yet (``bench/rules.py``'s ``keep=first``).

Storage: one Parquet file per night, ``models/evaluation_record[/<lineage>]/<as_of>.parquet``,
holding only the windows new that night (tonight's backtest repeats most of last night's);
the nightly's publish deletes the files older than twice what a night reads back (:func:`reach`).
Point in time: a night reads the files dated strictly before it, so a rerun of a night reads
what its first run read and repeats its choice, and a backfill never sees a later night's
record. A backfill of an earlier date that runs after later nights adds a file those later
nights did not read when they ran; their reruns read it.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
from typing import Any

import pandas as pd
from fsspec.core import url_to_fs

from pipeline_lib import schema
from pipeline_lib.config import Settings
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.forecasting.per_bucket import bucket_losses, buckets
from pipeline_lib.forecasting.selection import LOSS
from pipeline_lib.store.fs import atomic_write_bytes, dated_files

log = logging.getLogger(__name__)

FOLDER = "evaluation_record"
GROUP = [schema.SERIES_ID, "first", "last"]  # a series' bucket
WINDOW = [schema.SERIES_ID, "forecast_date", "first", "last"]
KEY = [*WINDOW, MODEL]
COLUMNS = [*KEY, LOSS]


def window_losses(rows: pd.DataFrame, horizon: int, bucket_ends: list[int]) -> pd.DataFrame:
    """Per series, bucket, window and model of the contest ``rows`` (one per forecast row:
    ``series_id, forecast_date, horizon, model, scaled_error``): the window's loss, the mean of
    its horizons' scaled errors (:data:`COLUMNS`)."""
    parts = []
    for first, last in buckets(bucket_ends, horizon):
        loss = bucket_losses(rows, first, last)
        parts.append(loss.reset_index().assign(first=first, last=last))
    if not parts:
        return empty()
    out = pd.concat(parts, ignore_index=True)
    out[schema.SERIES_ID] = out[schema.SERIES_ID].astype(str)
    out["forecast_date"] = pd.to_datetime(out["forecast_date"])
    out[MODEL] = out[MODEL].astype(str)
    return out[COLUMNS]


def empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.SERIES_ID: pd.Series(dtype=object),
            "forecast_date": pd.Series(dtype="datetime64[ns]"),
            "first": pd.Series(dtype="int64"),
            "last": pd.Series(dtype="int64"),
            MODEL: pd.Series(dtype=object),
            LOSS: pd.Series(dtype="float64"),
        }
    )


def merge(
    record: pd.DataFrame | None, tonight: pd.DataFrame, windows: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The evidence and what is new tonight, from the ``record`` (window losses of earlier
    nights) and ``tonight``'s. Returns ``(evidence, new)``:

    - the record counts only for tonight's series, buckets and models (a series or a model no
      longer in the contest is not chosen), and a window the record holds keeps its loss;
    - an older window than tonight's first counts only where every model of tonight's contest
      for the series has its loss there: a model new to the contest (a baseline added to the
      settings) competes on tonight's windows at once, and on more as its record grows;
    - per series and bucket, the newest ``windows`` windows;
    - ``new``: tonight's rows the record did not hold (what tonight adds to it)."""
    if record is None or record.empty:
        new = rows = tonight
        dates = rows[WINDOW].drop_duplicates()
    else:
        contest = tonight[[*GROUP, MODEL]].drop_duplicates()
        record = record.merge(contest, on=[*GROUP, MODEL], how="inner")
        rows = pd.concat([record, tonight], ignore_index=True)
        seen = rows.duplicated(KEY, keep="first").to_numpy()
        new = tonight.loc[~seen[len(record) :]]
        rows = rows.loc[~seen]
        have = rows.groupby(WINDOW, sort=False).size().rename("_have").reset_index()
        models = contest.groupby(GROUP).size().rename("_models").reset_index()
        since = tonight.groupby(GROUP)["forecast_date"].min().rename("_since").reset_index()
        have = have.merge(models, on=GROUP).merge(since, on=GROUP)
        complete = (have["_have"] >= have["_models"]) | (have["forecast_date"] >= have["_since"])
        dates = have.loc[complete.to_numpy(), WINDOW]
    order = dates.groupby(GROUP)["forecast_date"].rank(method="first", ascending=False)
    kept = dates.loc[(order <= windows).to_numpy()]
    evidence = rows.merge(kept, on=WINDOW, how="inner")
    return evidence.reset_index(drop=True), new.reset_index(drop=True)


def span_days(windows: int, last_n: int, step: int, horizon: int) -> int:
    """Calendar days back from a night within which the record's files surely hold its newest
    ``windows`` windows: a file dated d holds windows up to ``last_n`` origins (``step`` rows
    apart) and a horizon before d; rows counted as business days (7/5 of them in calendar
    days) and two weeks of holidays beside."""
    rows = (windows + last_n) * step + horizon
    return math.ceil(rows * 7 / 5) + 14


def reach(settings: Settings) -> int:
    """:func:`span_days` of the settings: the calendar days a night reads the record back."""
    cfg = settings.backtest
    return span_days(settings.selection.record_windows, cfg.last_n, cfg.step, settings.horizon)


def _folder(models_url: str, lineage: str) -> tuple[Any, str]:
    fs, path = url_to_fs(models_url)
    folder = f"{path.rstrip('/')}/{FOLDER}"
    return fs, f"{folder}/{lineage}" if lineage else folder


def _dated(models_url: str, lineage: str, low: str, high: str) -> tuple[Any, list[str]]:
    """The record's files dated from ``low`` to before ``high`` (ISO dates), oldest first."""
    fs, folder = _folder(models_url, lineage)
    return fs, dated_files(fs, folder, ".parquet", low, high)


def read(models_url: str, as_of: dt.date, since: dt.date, lineage: str = "") -> pd.DataFrame:
    """The record as a night ``as_of`` reads it: the files dated from ``since`` to the day
    before ``as_of``, oldest first (a window in two files, e.g. after a backfill of an earlier
    date, keeps the older night's loss). A file that cannot be read is left out with a warning
    naming it: the record only widens the evidence, and tonight's backtest is whole without
    it."""
    fs, dated = _dated(models_url, lineage, since.isoformat(), as_of.isoformat())
    parts = []
    for path in dated:
        try:
            parts.append(pd.read_parquet(io.BytesIO(fs.cat_file(path)))[COLUMNS])
        except (OSError, ValueError, KeyError) as exc:  # unreadable, or not a record's columns
            log.warning("evaluation record %s unreadable, left out: %s", path, exc)
    if not parts:
        return empty()
    rows = pd.concat(parts, ignore_index=True)
    return rows.drop_duplicates(KEY, keep="first").reset_index(drop=True)


def save(models_url: str, as_of: dt.date | str, rows: pd.DataFrame, lineage: str = "") -> str:
    """Write the windows first scored on ``as_of`` (atomic; a rerun of the night replaces
    them with its own, the same for the same inputs)."""
    fs, folder = _folder(models_url, lineage)
    fs.makedirs(folder, exist_ok=True)
    url = fs.unstrip_protocol(f"{folder}/{as_of}.parquet")
    buffer = io.BytesIO()
    rows[COLUMNS].to_parquet(buffer, index=False)
    return atomic_write_bytes(url, buffer.getvalue())


def prune(models_url: str, before: dt.date, lineage: str = "") -> int:
    """Delete the record's files dated before ``before`` (what no night from ``before`` plus
    the record's reach on reads); returns how many. The nightly keeps twice the reach
    (:func:`pipeline_lib.publishing.publish.publish_results`), so a rerun or backfill of a night
    within one reach of the newest reads what that night first read."""
    fs, old = _dated(models_url, lineage, "", before.isoformat())
    for path in old:
        fs.rm(path)
    return len(old)
