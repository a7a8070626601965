"""The ingest stage flow: fetch, land raw, validate every batch, then commit curated data."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from flows.opaque import opaque
from flows.runs import recorded_run
from pipeline_lib.config import load_settings
from pipeline_lib.ingest.landing import in_source_order, sources_for, split_sources
from pipeline_lib.running.backfill import scoped_settings
from pipeline_lib.validation import ValidationFailed
from tasks.artifacts import publish_validation_artifact
from tasks.ingest import commit_curated, ingest_file_drops, ingest_source, validate_batches


@flow(name="ingest", log_prints=True)
def ingest(
    as_of: dt.date,
    config_file: str | None = None,
    start: dt.date | None = None,
    series: list[str] | None = None,
) -> dict[str, Any]:
    """Bring curated data up to ``as_of``: nothing is committed unless every batch passes.

    Returns rows committed per batch, validation warnings per batch and ingest notes.

    Args:
        as_of: Newest date to take.
        config_file: A TOML settings file; otherwise PIPELINE_* variables and defaults.
        start: For a backfill: ask the sources for exactly ``start``..``as_of``.
        series: Only these series (a backfill's subset); default every configured one.
    """
    settings = scoped_settings(load_settings(config_file), series)
    with recorded_run(settings, "ingest", as_of) as run:
        sources = sources_for(settings)
        drops, live = split_sources(sources)
        fetches = [ingest_source.submit(settings, s, as_of, start) for s in live]
        dropped = ingest_file_drops(settings, drops, as_of, start) if drops else []
        batches = in_source_order(sources, [*dropped, *(f.result() for f in fetches)])
        try:
            reports = validate_batches(settings, batches, as_of, run.id)
        except ValidationFailed as exc:  # the summary shows what failed, then the run fails
            publish_validation_artifact(opaque(exc.reports), as_of, exc.quarantine_paths)
            raise
        publish_validation_artifact(opaque(reports), as_of)
        run.details = {
            "rows": commit_curated(settings, batches),
            "warnings": {r.key: [w.check for w in r.warnings] for r in reports if r.warnings},
            # each batch's notes (columns ignored, a file without rows) and rows revised
            "notes": [note for report in reports for note in report.notes],
        }
    return run.details
