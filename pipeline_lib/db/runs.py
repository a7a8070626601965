"""Writing what each run was and what it checked: its row in ``pipeline_runs`` (started,
finished or failed with why, crashed when its process died holding the writer lease) and the
result of every validation of its batches (``validation_results``). Both are upserts, so a
rerun of the same run id rewrites its rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, select, update

from pipeline_lib.db import values as v
from pipeline_lib.db.row_checks import check_references
from pipeline_lib.db.tables import (
    pipeline_runs,
    validation_results,
)
from pipeline_lib.db.upsert import transaction, upsert_rows

if TYPE_CHECKING:
    from pipeline_lib.validation.report import ExpectationFailure, ValidationReport


def start_run(
    bind: Engine | Connection,
    run_id: str,
    flow: str,
    as_of: dt.date,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record a run as ``running``. Starting the same run_id again (a retry) resets it."""
    row = {
        "run_id": run_id,
        "flow": flow,
        "as_of": v.to_date(as_of),
        "status": "running",
        "started_at": v.utcnow(),
        "finished_at": None,
        "message": None,
        "details": v.to_json(details),
    }
    with transaction(bind) as conn:
        upsert_rows(conn, pipeline_runs, [row])


def finish_run(
    bind: Engine | Connection,
    run_id: str,
    status: str,
    message: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Mark a run ``succeeded`` or ``failed``; ``details``, when given, replaces the stored ones.

    Raises LookupError if ``run_id`` was never started.
    """
    if status not in ("succeeded", "failed"):
        raise ValueError(f"a run finishes as 'succeeded' or 'failed', not {status!r}")
    values: dict[str, Any] = {"status": status, "finished_at": v.utcnow(), "message": message}
    if details is not None:
        values["details"] = v.to_json(details)
    stmt = update(pipeline_runs).where(pipeline_runs.c.run_id == run_id).values(**values)
    with transaction(bind) as conn:
        if conn.execute(stmt).rowcount == 0:
            raise LookupError(f"no pipeline run {run_id!r}; call start_run first")


def mark_crashed(bind: Engine | Connection, since: dt.datetime, message: str) -> list[str]:
    """Mark ``crashed`` every run still ``running`` that started at or after ``since`` (the
    time a run that died took the writer lease); returns their run ids, oldest first."""
    running = (pipeline_runs.c.status == "running") & (pipeline_runs.c.started_at >= since)
    with transaction(bind) as conn:
        found = conn.execute(
            select(pipeline_runs.c.run_id).where(running).order_by(pipeline_runs.c.started_at)
        ).scalars()
        ids = [str(i) for i in found]
        if ids:
            conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id.in_(ids))
                .values(status="crashed", finished_at=v.utcnow(), message=message)
            )
    return ids


def write_validation_results(
    bind: Engine | Connection, run_id: str, reports: Sequence[ValidationReport]
) -> int:
    """Upsert one ``validation_results`` row per report, keyed (run_id, dataset, batch).

    Failed reports are written like the others; rewriting a run's reports (a retry) updates its
    rows. ``failed_expectations`` lists every failed check, critical first, with a few example
    rows. Returns the number of rows written.
    """
    now = v.utcnow()
    rows = [
        {
            "run_id": run_id,
            "dataset": r.dataset,
            "batch": r.batch_name,
            "as_of": v.to_date(r.as_of),
            "success": bool(r.success),
            "row_count": int(r.row_count),
            "evaluated": int(r.evaluated),
            "successful": int(r.successful),
            "failed_critical": len(r.failures),
            "failed_warning": len(r.warnings),
            "failed_expectations": v.to_json([_failure(f) for f in [*r.failures, *r.warnings]]),
            "validated_at": now,
        }
        for r in reports
    ]
    keys = [(row["dataset"], row["batch"]) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"validation_results: duplicate (dataset, batch) in one run: {keys}")
    with transaction(bind) as conn:
        check_references(conn, validation_results, pa.Table.from_pylist(rows))
        upsert_rows(conn, validation_results, rows)
    return len(rows)


def _failure(f: ExpectationFailure) -> dict[str, Any]:
    return {
        "check": f.check,
        "columns": list(f.columns),
        "expectation_type": f.expectation_type,
        "severity": f.severity,
        "unexpected_count": f.unexpected_count,
        "rows": list(f.rows),
        "details": f.details,
    }
