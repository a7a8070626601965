"""The validation gate: every batch of a run is checked before any of them is committed.

A batch that fails a critical expectation is quarantined with its report, and the run stops
with :class:`ValidationFailed` naming the failed expectations, offending rows and quarantine
folder; curated data and SQL are untouched because nothing was committed yet.
"""

from __future__ import annotations

import datetime as dt
import json

from pipeline_lib import paths
from pipeline_lib.ingest import Batch
from pipeline_lib.store import atomic_write_bytes
from pipeline_lib.validation.quarantine import quarantine_batch
from pipeline_lib.validation.report import ValidationReport, raise_if_failed
from pipeline_lib.validation.validate import validate_batch


def check_batches(data_dir: str, batches: list[Batch], as_of: dt.date) -> list[ValidationReport]:
    """Validate each non-empty batch, keep its report in reports/validation/, gate the run."""
    reports: list[ValidationReport] = []
    quarantined: dict[str, str] = {}
    for batch in batches:
        if batch.data.empty:
            continue  # nothing new from this source: nothing to check or commit
        report = validate_batch(batch.data, batch.dataset, as_of, batch.name)
        url = paths.reports_dir(data_dir, "validation", as_of.isoformat(), f"{batch.name}.json")
        atomic_write_bytes(url, json.dumps(report.to_dict(), indent=2, default=str).encode())
        if not report.success:
            quarantined[report.key] = quarantine_batch(
                data_dir, report, batch.data, batch.raw_paths
            )
        reports.append(report)
    raise_if_failed(reports, quarantined)
    return reports
