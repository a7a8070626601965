"""The validation gate: every batch of a run is checked before any of them is committed.

A batch that fails a critical expectation is quarantined with its report, and the run stops
with :class:`ValidationFailed` naming the failed expectations, offending rows and quarantine
folder; curated data is untouched because nothing was committed yet. Warnings (freshness, gaps,
jumps, suspicious values, revisions of curated rows) are reported and the run goes on; revisions
are also in each report's ``notes``, for the run's notes. Every report is kept as JSON under
``reports/validation/<as_of>/``, added to the GX Data Docs site (one page per GX run: batches
validated together share one, a failed batch also has its own), and, given an engine, written
to the ``validation_results`` table, failed batches included, before the run fails.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping

import pandas as pd
from sqlalchemy import Engine

from pipeline_lib import paths, schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.ingest.batch import Batch
from pipeline_lib.ingest.curate import read_curated
from pipeline_lib.store import atomic_write_bytes
from pipeline_lib.validation.combined import Run, validate_batches
from pipeline_lib.validation.derived import has_derived
from pipeline_lib.validation.docs import build_data_docs
from pipeline_lib.validation.grouping import Item
from pipeline_lib.validation.quarantine import quarantine_batch
from pipeline_lib.validation.report import ValidationReport, raise_if_failed
from pipeline_lib.validation.reuse import checked_freshness
from pipeline_lib.validation.revisions import has_revisions
from pipeline_lib.validation.validate import KEYS

log = logging.getLogger(__name__)

HISTORY_DAYS = 400  # curated history read for the continuity checks and revisions (about a year)


def check_batches(
    data_dir: str,
    batches: list[Batch],
    as_of: dt.date,
    history: Mapping[str, pd.DataFrame] | None = None,
    thresholds: ValidationConfig | None = None,
    engine: Engine | None = None,
    run_id: str | None = None,
) -> list[ValidationReport]:
    """Validate each batch, keep its report, gate the run.

    ``history`` maps a batch name (or a data set) to recent curated rows; by default they are read
    from curated data (the last ``HISTORY_DAYS`` days before ``as_of``, reaching further back to
    the batch's first date, so every revised row is seen), once per data set for all its
    batches. A batch with no rows gets a freshness-only report on its curated data. The batches
    of a data set are validated together (:mod:`validation.combined`: one GX run, one report
    per batch). ``thresholds`` defaults to ``ValidationConfig()``. With ``engine``, every
    report is written to ``validation_results`` under ``run_id`` (default: a random id) before
    :class:`ValidationFailed` is raised.
    """
    run_id = run_id or f"validation-{uuid.uuid4().hex[:12]}"
    # nothing new in an exogenous data set: what a night lacks is named later
    batches = [b for b in batches if not (b.dataset == schema.COVARIATES and b.data.empty)]
    pasts = _histories(data_dir, batches, as_of, history)
    found, runs, reused = _validate(data_dir, batches, pasts, as_of, thresholds)
    reports: list[ValidationReport] = []
    quarantined: dict[str, str] = {}
    for batch, checked in zip(batches, found, strict=True):
        for report, data in checked:
            _keep(data_dir, report, data, batch.raw_paths, as_of, quarantined)
            reports.append(report)
    if engine is not None:
        from pipeline_lib.db import write_validation_results

        write_validation_results(engine, run_id, reports)  # its own transaction: kept on failure
    fresh = [r for r in reports if id(r) not in reused]  # the reused have their pages
    if fresh or runs:
        _data_docs(data_dir, fresh, runs, run_id, as_of, thresholds)
    elif reports:
        log.info("freshness of %d batches as an earlier run of %s found it", len(reports), as_of)
    raise_if_failed(reports, quarantined)
    return reports


def _validate(
    data_dir: str,
    batches: list[Batch],
    pasts: list[pd.DataFrame | None],
    as_of: dt.date,
    thresholds: ValidationConfig | None,
) -> tuple[list[list[tuple[ValidationReport, pd.DataFrame]]], list[Run], set[int]]:
    """Per batch, its report and rows, then its covariates' (if any), the GX runs over
    several batches, and the ids of the reports reused from an earlier identical check: the
    batches of a data set with rows are validated together by suite options, those without
    by freshness (:mod:`pipeline_lib.validation.reuse`: the same check of the same rows and
    date is answered from the earlier run's reports)."""
    groups: dict[tuple[str, bool, bool], list[int]] = defaultdict(list)
    for i, batch in enumerate(batches):
        empty = batch.data.empty  # nothing new from this source: only its freshness to check
        groups[(batch.dataset, empty, batch.signed and not empty)].append(i)
    found: dict[int, ValidationReport] = {}
    runs: list[Run] = []
    reused: set[int] = set()
    for (dataset, empty, signed), members in groups.items():
        items = [Item(batches[i].name, batches[i].key, batches[i].data, pasts[i]) for i in members]
        if empty:
            got, was_reused = checked_freshness(data_dir, items, dataset, as_of, thresholds)
            if was_reused:
                reused.update(id(r) for r in got.reports)
        else:
            got = validate_batches(items, dataset, as_of, thresholds, signed=signed)
        found.update(zip(members, got.reports, strict=True))
        runs += got.runs
    with_covariates = [
        i for i, b in enumerate(batches) if b.covariates is not None and not b.covariates.empty
    ]
    items = [
        Item(f"{schema.COVARIATES}-{batches[i].key}", batches[i].key, batches[i].covariates)
        for i in with_covariates
    ]
    got = validate_batches(items, schema.COVARIATES, as_of)
    covariates = dict(zip(with_covariates, got.reports, strict=True))
    runs += got.runs
    checked = []
    for i, batch in enumerate(batches):
        report = found[i]
        report.source = batch.origin
        report.notes = [*batch.notes, *report.notes]  # the ingest's (no rows...) and revisions
        mine = [(report, batch.data)]
        if i in covariates:
            covariates[i].source = batch.origin
            mine.append((covariates[i], batch.covariates))
        checked.append(mine)
    return checked, runs, reused


def _keep(
    data_dir: str,
    report: ValidationReport,
    data: pd.DataFrame,
    raw_paths: list[str],
    as_of: dt.date,
    quarantined: dict[str, str],
) -> None:
    """Write a report, quarantine its rows when it failed, log its warnings."""
    url = paths.reports_dir(data_dir, "validation", as_of.isoformat(), f"{report.batch_name}.json")
    atomic_write_bytes(url, json.dumps(report.to_dict(), indent=2, default=str).encode())
    if not report.success:
        quarantined[report.key] = quarantine_batch(data_dir, report, data, raw_paths)
    for warning in report.warnings:
        log.warning("%s: warning %s", report.key, warning.describe())


def _histories(
    data_dir: str,
    batches: list[Batch],
    as_of: dt.date,
    given: Mapping[str, pd.DataFrame] | None,
) -> list[pd.DataFrame | None]:
    """Each batch's recent curated rows (see ``check_batches``): read once per data set for
    all its batches' keys, from the earliest date any of them needs, then split by key.
    Data sets whose checks read no history (covariates) get None."""
    if given is not None:
        return [_given_history(batch, given) for batch in batches]
    starts = [_start(batch, as_of) for batch in batches]
    pasts: list[pd.DataFrame | None] = [None] * len(batches)
    by_dataset: dict[str, list[int]] = defaultdict(list)
    for i, batch in enumerate(batches):
        if has_derived(batch.dataset) or has_revisions(batch.dataset):
            by_dataset[batch.dataset].append(i)
    for dataset, members in by_dataset.items():
        keys = sorted({batches[i].key for i in members})
        start = min(starts[i] for i in members)
        past = read_curated(data_dir, dataset, keys, as_of, start=start)
        own = dict(tuple(past.groupby(KEYS[dataset], sort=False))) if not past.empty else {}
        nothing = past.iloc[0:0]  # a key without curated rows
        for i in members:
            mine = own.get(batches[i].key, nothing)
            later = starts[i] > start  # another batch reaches further back
            pasts[i] = mine[mine["date"] >= pd.Timestamp(starts[i])] if later else mine
    return pasts


def _start(batch: Batch, as_of: dt.date) -> dt.date:
    """The first curated date a batch's checks read: ``HISTORY_DAYS`` before ``as_of``, or
    the batch's first date if earlier (a re-delivered file)."""
    start = as_of - dt.timedelta(days=HISTORY_DAYS)
    if "date" in batch.data.columns:
        first = pd.to_datetime(batch.data["date"], errors="coerce").min()
        if pd.notna(first):
            start = min(start, first.date())
    return start


def _given_history(batch: Batch, given: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """A given history, by batch name or by data set, filtered to the batch's key."""
    past = given.get(batch.name, given.get(batch.dataset))
    if past is None or past.empty:
        return pd.DataFrame()
    key = KEYS[batch.dataset]
    return past[past[key] == batch.key] if key in past.columns else past


def _data_docs(
    data_dir: str,
    reports: list[ValidationReport],
    runs: list[Run],
    run_id: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None,
) -> None:
    """Data Docs are a convenience: a failure to build them is logged, never fails the run."""
    try:
        url = build_data_docs(data_dir, reports, run_id, as_of, thresholds, runs=runs)
    except Exception:  # noqa: BLE001 - the gate's verdict must not depend on HTML rendering
        log.exception("building the Data Docs site failed")
        return
    if url:
        log.info("Data Docs: %s", url)
