"""Every flow run is a row in ``pipeline_runs``: running, then succeeded or failed (with why)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prefect.runtime import flow_run

from pipeline_lib.config import Settings
from pipeline_lib.running import memory
from tasks.publish import finish_run, prepare_database, start_run


@dataclass
class RunRecord:
    id: str
    details: dict[str, Any] = field(default_factory=dict)


def current_run_id() -> str:
    return str(flow_run.get_id() or f"local-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}")


@contextmanager
def recorded_run(settings: Settings, flow: str, as_of: dt.date) -> Iterator[RunRecord]:
    """Record this flow run; put what it did in ``record.details`` (kept when it succeeds).
    While it runs, the heavy stages' memory releases collect only what the run made
    (:func:`pipeline_lib.running.memory.run_objects_only`)."""
    with memory.run_objects_only():
        yield from _recorded(settings, flow, as_of)


def _recorded(settings: Settings, flow: str, as_of: dt.date) -> Iterator[RunRecord]:
    parent = flow_run.get_parent_flow_run_id()
    context = {"parent_run_id": str(parent)} if parent else {}
    record = RunRecord(current_run_id())
    prepare_database(settings)
    start_run(settings, record.id, flow, as_of, context or None)
    try:
        yield record
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        finish_run(settings, record.id, "failed", message, {**context, **record.details})
        raise
    finish_run(settings, record.id, "succeeded", None, {**context, **record.details})
