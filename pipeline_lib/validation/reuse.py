"""Freshness reports kept for a run that asks the same question again.

A night with nothing new from a source checks only the freshness of that source's curated data:
each key's newest row and how many days old it is on the run's date
(:func:`pipeline_lib.validation.combined.check_freshness_all`). A second run of the same night
(a retried schedule, a no-new-data night run twice) asks the same question of the same rows, and
Great Expectations' import and run were most of what such a night cost (about 4 of 19 s at 100
series). The reports of a freshness check are kept under
``state/freshness/<as_of>/<dataset>.pkl``, keyed by a digest of everything the check reads (the
data set, the batch's name and key, the date, the thresholds, the key's newest curated rows and
the GX version); a run whose every empty batch of a data set finds its digest there takes those
reports instead of running GX again, and records them as its own (report files,
``validation_results``). Any change to what the check reads (a new row, a revised newest row,
another threshold) misses the digest and the check runs. The files are the pipeline's own
pickles; a torn or foreign file is ignored, and at most ``KEEP_DATES`` dates are kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import pickle
from collections.abc import Sequence
from importlib.metadata import version

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join
from pipeline_lib.validation.combined import Validated, check_freshness_all
from pipeline_lib.validation.derived import newest_rows
from pipeline_lib.validation.grouping import Item
from pipeline_lib.validation.validate import KEYS

log = logging.getLogger(__name__)

FORMAT = 1  # bump when what a digest covers or the file layout changes
KEEP_DATES = 14  # dates whose freshness reports are kept (the newest by date)
_TAG = "\x1f"  # between an item's place and its key (the unit separator: no name holds it)


def _folder(data_dir: str) -> str:
    return join(data_dir, "state", "freshness")


def _file(data_dir: str, dataset: str, as_of: dt.date) -> str:
    return join(_folder(data_dir), as_of.isoformat(), f"{dataset}.pkl")


def _question(dataset: str, as_of: dt.date, thresholds: ValidationConfig | None) -> str:
    """What every freshness check of a data set on a date shares: the format, GX's version,
    the data set, the date and the thresholds."""
    settings = (thresholds or ValidationConfig()).model_dump_json()
    return f"{FORMAT}|{version('great_expectations')}|{dataset}|{as_of.isoformat()}|{settings}"


def freshness_digest(item: Item, dataset: str, question: str, as_of: dt.date) -> str:
    """What a freshness check of ``item`` reads (its name, key and newest rows, and the
    ``question`` of :func:`_question`), as a digest."""
    return _digest(item, newest_rows(item.history, dataset, as_of), question)


def _digest(item: Item, newest: pd.DataFrame, question: str) -> str:
    head = f"{question}|{item.name}|{item.key}|{list(newest.columns)}|"
    head += str(list(newest.dtypes.astype(str)))
    rows = pd.util.hash_pandas_object(newest, index=False).to_numpy().tobytes()
    return hashlib.sha256(head.encode() + rows).hexdigest()


def freshness_digests(
    items: Sequence[Item], dataset: str, question: str, as_of: dt.date
) -> list[str]:
    """:func:`freshness_digest` of every item (the same digests), with the newest rows of all
    of them found in one pass: each item's keys tagged with its place, then split again (a
    thousand series' items one by one took 6 s of a night with nothing new)."""
    key = KEYS[dataset]
    whole = [
        i
        for i, item in enumerate(items)
        if item.history is not None
        and not item.history.empty
        and {key, schema.DATE} <= set(item.history.columns)
    ]
    alone = set(range(len(items))) - set(whole)  # no rows to tag: digested as they are
    digests = {i: freshness_digest(items[i], dataset, question, as_of) for i in alone}
    if whole:
        tagged = []
        for i in whole:
            history = items[i].history
            assert history is not None
            keys = history[key].astype(object)
            tag = keys.where(keys.isna(), f"{i}{_TAG}" + keys.astype(str))
            tagged.append(pd.DataFrame({key: tag, schema.DATE: history[schema.DATE]}))
        newest = newest_rows(pd.concat(tagged, ignore_index=True), dataset, as_of)
        place = newest[key].str.split(_TAG, n=1).str[0].astype("int64")
        parts = dict(tuple(newest.groupby(place.to_numpy(), sort=False)))
        empty = newest.iloc[:0]
        for i in whole:
            part = parts.get(i, empty).reset_index(drop=True)
            dtype = items[i].history[key].dtype  # type: ignore[index]
            part[key] = part[key].str.split(_TAG, n=1).str[1].astype(dtype)
            digests[i] = _digest(items[i], part, question)
    return [digests[i] for i in range(len(items))]


def checked_freshness(
    data_dir: str,
    items: Sequence[Item],
    dataset: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None,
) -> tuple[Validated, bool]:
    """The freshness reports of ``items`` (in order) and whether they were reused: the kept
    ones when every item's digest is kept, else one GX check of them all
    (:func:`~pipeline_lib.validation.combined.check_freshness_all`), kept for the next run as
    it made them (before the run adds its own notes). The file is read once and each item
    digested once; a failure to keep only costs the next run the check."""
    url = _file(data_dir, dataset, as_of)
    kept = _read(url)
    digests: list[str] | None = None
    if kept:
        question = _question(dataset, as_of, thresholds)
        digests = freshness_digests(items, dataset, question, as_of)
        if all(d in kept for d in digests):  # a copy each: the run adds its own notes
            reports = [pickle.loads(kept[d]) for d in digests]  # noqa: S301 - our own file
            return Validated(reports, []), True
    checked = check_freshness_all(items, dataset, as_of, thresholds)
    try:
        if digests is None:
            question = _question(dataset, as_of, thresholds)
            digests = freshness_digests(items, dataset, question, as_of)
        for digest, report in zip(digests, checked.reports, strict=True):
            kept[digest] = pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write_bytes(url, pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL))
        _prune(data_dir)
    except Exception as exc:  # noqa: BLE001 - a cache: never fails the run
        log.warning("freshness reports not kept (%s): %s", url, exc)
    return checked, False


def _read(url: str) -> dict[str, bytes]:
    try:
        fs, path = filesystem(url)
        if not fs.exists(path):
            return {}
        kept = pickle.loads(fs.cat_file(path))  # noqa: S301 - the pipeline's own file
    except Exception as exc:  # noqa: BLE001 - torn or foreign: check again
        log.warning("freshness reports %s unreadable, checking again: %s", url, exc)
        return {}
    if not isinstance(kept, dict):
        return {}
    return {k: v for k, v in kept.items() if isinstance(k, str) and isinstance(v, bytes)}


def _prune(data_dir: str) -> None:
    fs, path = filesystem(_folder(data_dir))
    dates = sorted(fs.ls(path, detail=False))
    for old in dates[:-KEEP_DATES]:
        fs.rm(old, recursive=True)
