"""Ingest and curate tasks."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from pipeline_lib import db
from pipeline_lib.config import Settings
from pipeline_lib.ingest import curate, gate, landing
from pipeline_lib.ingest.batch import Batch
from pipeline_lib.ingest.sources import Source, SourceError
from pipeline_lib.validation.report import ValidationReport
from tasks.memory import RELEASE


def _transient(task: object, task_run: object, state: object) -> bool:
    """Retry only what may pass next time: a bad file (ParseError) or a live source that
    already spent its own retries (SourceError) fails at once with its message."""
    return not isinstance(getattr(state, "data", None), SourceError)


_FETCH = dict(
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_jitter_factor=0.5,
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
)


@task(
    name="ingest-source",
    task_run_name="ingest-{source.dataset}-{source.key}",
    **_FETCH,
    **RELEASE,
)
def ingest_source(
    settings: Settings, source: Source, as_of: dt.date, start: dt.date | None = None
) -> Batch:
    return landing.ingest_source(settings, source, as_of, start)


@task(name="ingest-file-drops", task_run_name="ingest-file-drops-{as_of}", **_FETCH, **RELEASE)
def ingest_file_drops(
    settings: Settings, sources: list[Source], as_of: dt.date, start: dt.date | None = None
) -> list[Batch]:
    """Every file-drop source in one task: reading a folder's new files is local work, so a
    task run per source would cost more in orchestration than the read (issue 18)."""
    return [landing.ingest_source(settings, source, as_of, start) for source in sources]


@task(name="validate-batches", cache_policy=NO_CACHE, **RELEASE)
def validate_batches(
    settings: Settings, batches: list[Batch], as_of: dt.date, run_id: str
) -> list[ValidationReport]:
    with db.engine_scope(settings.db_url) as engine:
        return gate.check_batches(
            settings.data_dir,
            batches,
            as_of,
            thresholds=settings.validation,
            engine=engine,
            run_id=run_id,
        )


@task(name="commit-curated", cache_policy=NO_CACHE, **RELEASE)
def commit_curated(settings: Settings, batches: list[Batch]) -> dict[str, int]:
    return curate.commit_batches(settings.data_dir, batches)
