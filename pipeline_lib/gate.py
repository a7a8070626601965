"""The validation gate: every batch of a run is checked before any of them is committed.

A batch that fails a critical expectation is quarantined with its report, and the run stops
with :class:`ValidationFailed` naming the failed expectations, offending rows and quarantine
folder; curated data is untouched because nothing was committed yet. Warnings (freshness, gaps,
jumps, suspicious values, revisions of curated rows) are reported and the run goes on; revisions
are also in each report's ``notes``, for the run's notes. Every report is kept as JSON under
``reports/validation/<as_of>/``, added to the GX Data Docs site, and, given an engine, written
to the ``validation_results`` table, failed batches included, before the run fails.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping

import pandas as pd
from sqlalchemy import Engine

from pipeline_lib import paths, schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.curate import read_curated
from pipeline_lib.ingest import Batch
from pipeline_lib.store import atomic_write_bytes
from pipeline_lib.validation.docs import build_data_docs
from pipeline_lib.validation.quarantine import quarantine_batch
from pipeline_lib.validation.report import ValidationReport, raise_if_failed
from pipeline_lib.validation.validate import KEYS, check_freshness, validate_batch

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
    the batch's first date, so every revised row is seen). A batch with no rows
    gets a freshness-only report on its curated data. ``thresholds`` defaults to
    ``ValidationConfig()``. With ``engine``, every report is written to ``validation_results``
    under ``run_id`` (default: a random id) before :class:`ValidationFailed` is raised.
    """
    run_id = run_id or f"validation-{uuid.uuid4().hex[:12]}"
    reports: list[ValidationReport] = []
    quarantined: dict[str, str] = {}
    for batch in batches:
        if batch.dataset == schema.COVARIATES and batch.data.empty:
            continue  # nothing new in an exogenous data set: what a night lacks is named later
        past = _history(data_dir, batch, as_of, history)
        if batch.data.empty:  # nothing new from this source: only its freshness to check
            report = check_freshness(past, batch.dataset, as_of, batch.name, thresholds)
        else:
            report = validate_batch(
                batch.data, batch.dataset, as_of, batch.name, past, thresholds, signed=batch.signed
            )
        report.source = batch.origin
        report.notes = [*batch.notes, *report.notes]  # the ingest's (no rows...) and revisions
        checked = [(report, batch.data)]
        if batch.covariates is not None and not batch.covariates.empty:
            name = f"{schema.COVARIATES}-{batch.key}"
            covariates = validate_batch(batch.covariates, schema.COVARIATES, as_of, name)
            covariates.source = batch.origin
            checked.append((covariates, batch.covariates))
        for checked_report, data in checked:
            _keep(data_dir, checked_report, data, batch.raw_paths, as_of, quarantined)
            reports.append(checked_report)
    if engine is not None:
        from pipeline_lib.db import write_validation_results

        write_validation_results(engine, run_id, reports)  # its own transaction: kept on failure
    _data_docs(data_dir, reports, run_id, as_of, thresholds)
    raise_if_failed(reports, quarantined)
    return reports


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


def _history(
    data_dir: str,
    batch: Batch,
    as_of: dt.date,
    given: Mapping[str, pd.DataFrame] | None,
) -> pd.DataFrame:
    if given is not None:  # by batch name, or by data set (then filtered to the batch's key)
        past = given.get(batch.name, given.get(batch.dataset))
        if past is None or past.empty:
            return pd.DataFrame()
        key = KEYS[batch.dataset]
        return past[past[key] == batch.key] if key in past.columns else past
    start = as_of - dt.timedelta(days=HISTORY_DAYS)
    if "date" in batch.data.columns:  # a batch reaching further back (a re-delivered file)
        first = pd.to_datetime(batch.data["date"], errors="coerce").min()
        if pd.notna(first):
            start = min(start, first.date())
    past = read_curated(data_dir, batch.dataset, [batch.key], as_of)
    return past[past["date"] >= pd.Timestamp(start)] if not past.empty else past


def _data_docs(
    data_dir: str,
    reports: list[ValidationReport],
    run_id: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None,
) -> None:
    """Data Docs are a convenience: a failure to build them is logged, never fails the run."""
    try:
        url = build_data_docs(data_dir, reports, run_id, as_of, thresholds)
    except Exception:  # noqa: BLE001 - the gate's verdict must not depend on HTML rendering
        log.exception("building the Data Docs site failed")
        return
    if url:
        log.info("Data Docs: %s", url)
