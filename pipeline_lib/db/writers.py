"""Idempotent writers, safe to rerun with the same inputs.

Each takes an Engine (the call is its own transaction) or a Connection (the call joins the
caller's transaction, so a run's writes can be published all at once).

Forecasts, drift metrics and model selections are *replaced* per (series, forecast date): a
rerun deletes that key's rows and inserts the new ones, so stale horizons, metrics or buckets
never linger. Model versions,
pipeline runs and validation results are upserts (``INSERT ... ON CONFLICT``). Only bound
parameters are sent.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine, String, select, update

from pipeline_lib.db import values as v
from pipeline_lib.db.engine import make_engine
from pipeline_lib.db.frames import arrow_type, to_arrow
from pipeline_lib.db.migrate import create_schema
from pipeline_lib.db.tables import (
    MODEL_KINDS,
    TRAINING_ACTIONS,
    actuals,
    backtest_results,
    drift_metrics,
    forecasts,
    model_selections,
    model_versions,
    pipeline_runs,
    training_decisions,
    validation_results,
)
from pipeline_lib.db.upsert import (
    BULK_ROWS,
    check_references,
    replace_rows,
    transaction,
    upsert_rows,
    upsert_table,
)

BACKTEST_SLICE_ROWS = 500_000  # backtest rows converted and written at once (its memory)

if TYPE_CHECKING:
    from pipeline_lib.validation.report import ExpectationFailure, ValidationReport

__all__ = [
    "create_schema",
    "finish_run",
    "make_engine",
    "start_run",
    "set_model_statuses",
    "upsert_model_version",
    "write_actuals",
    "prune_backtest_results",
    "write_backtest_results",
    "write_drift_metrics",
    "write_forecasts",
    "write_model_selections",
    "write_training_decision",
    "write_validation_results",
]

MODEL_VERSION_CONVERTERS: dict[str, v.Converter] = {
    "version": v.to_str,
    "parent_version": v.to_str,
    "kind": v.to_str,
    "status": v.to_str,
    "created_at": v.to_datetime_utc,
    "train_start": v.to_date,
    "train_end": v.to_date,
    "data_fingerprint": v.to_str,
    "hyperparameters": v.to_json,
    "metrics": v.to_json,
    "path": v.to_str,
}


def write_forecasts(
    bind: Engine | Connection, df: pd.DataFrame, run_id: str, bulk_rows: int = BULK_ROWS
) -> int:
    """Write forecasts, replacing the rows of every (series_id, forecast_date) in ``df``.

    ``df`` has the columns series_id, forecast_date, target_date, horizon, yhat, yhat_lower,
    yhat_upper and model_version, and optionally ``model`` (default ``lstm``). From
    ``bulk_rows`` rows PostgreSQL gets them by COPY. Returns the number of rows written.
    """
    if "model" not in df.columns:
        df = df.assign(model="lstm")
    data = to_arrow(forecasts, df, {"run_id": run_id, "created_at": v.utcnow()})
    return replace_rows(bind, forecasts, data, ["series_id", "forecast_date"], bulk_rows)


def write_backtest_results(
    bind: Engine | Connection,
    df: pd.DataFrame,
    run_id: str,
    backtest_date: dt.date,
    bulk_rows: int = BULK_ROWS,
    series_ids: list[str] | None = None,
    slice_rows: int = BACKTEST_SLICE_ROWS,
) -> int:
    """Write one night's backtest rows, replacing every row of ``backtest_date`` (only of
    ``series_ids`` when given: a run over a subset of the series leaves the others' rows).

    ``df``: the rows of :func:`pipeline_lib.evaluation.backtest.score_backtest` (forecast
    columns, ``model``, ``model_version``, ``actual`` and the metric terms). They are converted
    and written whole series at a time, about ``slice_rows`` rows a slice (a thousand series'
    night is millions of rows: one Arrow copy of them all doubled the publish stage's memory),
    in one transaction. Returns the number of rows written.
    """
    constants = {"backtest_date": backtest_date, "run_id": run_id, "created_at": v.utcnow()}
    t = backtest_results
    with transaction(bind) as conn:
        gone = t.c.backtest_date == backtest_date
        if series_ids is not None:  # series of the run without rows tonight
            gone &= t.c.series_id.in_(sorted(set(series_ids) - set(df.get("series_id", []))))
        conn.execute(t.delete().where(gone))
        if df.empty:
            to_arrow(t, df, constants)  # the columns are checked all the same
            return 0
        written = 0
        for part in series_slices(df, slice_rows):
            data = to_arrow(t, part, constants)
            # a slice holds whole series: its primary keys are checked with every row they
            # could repeat
            written += replace_rows(conn, t, data, ["backtest_date", "series_id"], bulk_rows)
        return written


def series_slices(df: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """The rows of ``df`` by whole series (in series order), about ``rows`` rows a slice."""
    sizes = df["series_id"].value_counts(sort=False).sort_index()
    ids = df["series_id"]
    chunk: list[str] = []
    count = 0
    for sid, size in sizes.items():
        chunk.append(str(sid))
        count += int(size)
        if count >= rows:
            yield df.loc[ids.isin(chunk)]
            chunk, count = [], 0
    if chunk:
        yield df.loc[ids.isin(chunk)]


def prune_backtest_results(bind: Engine | Connection, before: dt.date) -> int:
    """Delete the backtests dated before ``before`` (``backtest.keep_days``: every night writes
    its whole backtest, every origin, horizon and model); returns the rows deleted."""
    t = backtest_results
    with transaction(bind) as conn:
        return conn.execute(t.delete().where(t.c.backtest_date < before)).rowcount or 0


SELECTION_FIELDS = (
    "forecast_date",
    "series_id",
    "horizon_from",
    "horizon_to",
    "model",
    "model_version",
    "rule",
    "weights",
    "member_versions",
    "evidence",
)
WEIGHT_TOLERANCE = 1e-6  # how far a bucket's weights may sum from 1


def write_model_selections(
    bind: Engine | Connection, records: Sequence[Mapping[str, Any]], run_id: str
) -> int:
    """Write what a night publishes per series and horizon bucket, replacing the rows of every
    (forecast_date, series_id) in ``records`` (a series' buckets of that night, all of them).

    Each record has exactly the keys forecast_date (a date), series_id, horizon_from,
    horizon_to (the bucket, 1-based and inclusive), model (the label in ``forecasts.model``),
    model_version (the single model's version, or the combination's ``combo-...``: register
    it first with :func:`upsert_model_version`), rule, weights ({model: weight}, every weight
    positive, summing to 1), member_versions ({model: model_version}, the same models) and
    evidence (a dict, or None; may be left out). Dicts are stored as JSON text with sorted
    keys (NaN and infinities in evidence as null). Raises ValueError naming the record and
    field, LookupError for an unknown run id or model version, before anything is written.
    Returns the number of rows written.
    """
    rows = [_selection_row(i, record) for i, record in enumerate(records)]
    _check_buckets(rows)
    now = v.utcnow()
    for row in rows:
        row.update(run_id=run_id, created_at=now)
    schema = pa.schema([(c.name, arrow_type(c.type)) for c in model_selections.columns])
    data = pa.Table.from_pylist(rows, schema=schema)
    return replace_rows(bind, model_selections, data, ["forecast_date", "series_id"])


def _selection_row(i: int, record: Mapping[str, Any]) -> dict[str, Any]:
    """One model_selections row from a record, or ValueError naming record ``i`` and field."""
    where = f"model_selections record {i}"
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: a record is a dict, got {type(record).__name__}")
    fields = set(SELECTION_FIELDS)
    missing = sorted(fields - {"evidence"} - set(record))
    unknown = sorted(set(record) - fields)
    if missing or unknown:
        raise ValueError(
            f"{where}: needs the keys {list(SELECTION_FIELDS)}; missing {missing}, "
            f"unknown {unknown}"
        )
    where = f"{where} ({record.get('series_id')!r}, {record.get('forecast_date')!s}, horizons "
    where += f"{record.get('horizon_from')}..{record.get('horizon_to')})"
    row: dict[str, Any] = {}
    try:
        row["forecast_date"] = v.to_date(record["forecast_date"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: forecast_date is not a date: {exc}") from None
    if row["forecast_date"] is None:
        raise ValueError(f"{where}: forecast_date must not be null")
    for name in ("horizon_from", "horizon_to"):
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
        row[name] = int(value)
    if row["horizon_from"] < 1:
        raise ValueError(f"{where}: horizon_from must be at least 1 (the next step)")
    if row["horizon_from"] > row["horizon_to"]:
        raise ValueError(f"{where}: horizon_from must not be after horizon_to")
    for name in ("series_id", "model", "model_version", "rule"):
        value = v.to_str(record[name])
        column_type = model_selections.c[name].type
        assert isinstance(column_type, String) and column_type.length  # String(n) columns
        limit = column_type.length
        if not value or len(value) > limit:
            raise ValueError(f"{where}: {name} must be 1 to {limit} characters, got {value!r}")
        row[name] = value
    weights = _name_map(where, "weights", record["weights"])
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.number):
            raise ValueError(f"{where}: weights[{name!r}] must be a number, got {weight!r}")
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"{where}: weights[{name!r}] must be positive, got {weight!r}")
    total = math.fsum(float(w) for w in weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{where}: weights must sum to 1 (within {WEIGHT_TOLERANCE}), not {total}")
    versions = _name_map(where, "member_versions", record["member_versions"])
    if set(versions) != set(weights):
        raise ValueError(
            f"{where}: member_versions must name the models of weights {sorted(weights)}, "
            f"got {sorted(versions)}"
        )
    row["weights"] = _strict_json({k: float(w) for k, w in weights.items()})
    row["member_versions"] = _strict_json({k: v.to_str(ver) for k, ver in versions.items()})
    evidence = record.get("evidence")
    if evidence is not None and not isinstance(evidence, Mapping):
        raise ValueError(f"{where}: evidence must be a dict or None, got {evidence!r}")
    row["evidence"] = None if evidence is None else _strict_json(evidence)
    return row


def _name_map(where: str, name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{where}: {name} must be a non-empty dict {{model: ...}}, got {value!r}")
    if not all(isinstance(k, str) and k for k in value):
        raise ValueError(f"{where}: {name} must be keyed by model names, got {sorted(value)}")
    return value


def _check_buckets(rows: Sequence[Mapping[str, Any]]) -> None:
    """ValueError naming the two buckets when buckets of one series and date overlap."""
    by_scope: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_scope.setdefault((row["series_id"], row["forecast_date"]), []).append(row)
    for (series_id, forecast_date), scope in sorted(by_scope.items()):
        scope = sorted(scope, key=lambda r: (r["horizon_from"], r["horizon_to"]))
        for before, after in zip(scope, scope[1:], strict=False):
            if after["horizon_from"] <= before["horizon_to"]:
                raise ValueError(
                    f"model_selections: the buckets {before['horizon_from']}.."
                    f"{before['horizon_to']} and {after['horizon_from']}..{after['horizon_to']} "
                    f"of {series_id!r} on {forecast_date} overlap (one choice per horizon)"
                )


def _strict_json(value: Any) -> str:
    """JSON text with sorted keys that any JSON parser reads: NaN and infinities as null."""
    text = v.to_json(_finite_or_none(value))
    assert text is not None
    return text


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _finite_or_none(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(x) for x in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def set_model_statuses(bind: Engine | Connection, statuses: Mapping[str, str]) -> None:
    """Set ``model_versions.status`` of registered versions (LookupError for an unknown one)."""
    with transaction(bind) as conn:
        for version, status in sorted(statuses.items()):
            upsert_model_version(conn, {"version": version, "status": status})


def write_drift_metrics(
    bind: Engine | Connection, df: pd.DataFrame, run_id: str, forecast_date: dt.date | None = None
) -> int:
    """Write drift metrics, replacing the rows of every (forecast_date, series_id) in ``df``.

    ``df`` has the columns series_id, feature, metric, value, threshold, is_drift and
    forecast_date (or pass ``forecast_date`` to set it for all rows, as for the output of
    :func:`pipeline_lib.drift.drift_table`); a missing ``is_drift`` is false. Returns the
    number of rows written.
    """
    if forecast_date is not None:
        df = df.assign(forecast_date=forecast_date)
    if "is_drift" in df.columns:
        df = df.assign(is_drift=df["is_drift"].astype("boolean").fillna(False))
    data = to_arrow(drift_metrics, df, {"run_id": run_id, "created_at": v.utcnow()})
    return replace_rows(bind, drift_metrics, data, ["forecast_date", "series_id"])


TRAINING_DECISION_CONVERTERS: dict[str, v.Converter] = {
    "forecast_date": v.to_date,
    "action": v.to_str,
    "trigger": v.to_str,
    "reason": v.to_str,
    "base_version": v.to_str,
    "model_version": v.to_str,
    "contested": bool,
    "drift_retrain": bool,
    "drifted_pairs": int,
    "decayed_series": int,
    "flags": v.to_json,
}


def write_training_decision(
    bind: Engine | Connection, record: Mapping[str, Any], run_id: str
) -> int:
    """Upsert a run's retraining decision (one row per run; ``record`` has every column of
    ``training_decisions`` but run_id and created_at; ``flags`` may be a list, stored as
    JSON text). Returns 1."""
    fields = set(TRAINING_DECISION_CONVERTERS)
    if set(record) != fields:
        raise ValueError(
            f"a training decision needs exactly {sorted(fields)}; missing "
            f"{sorted(fields - set(record))}, unknown {sorted(set(record) - fields)}"
        )
    if record["action"] not in TRAINING_ACTIONS:
        raise ValueError(f"action must be one of {TRAINING_ACTIONS}, got {record['action']!r}")
    row = {k: TRAINING_DECISION_CONVERTERS[k](val) for k, val in record.items()}
    row.update(run_id=run_id, created_at=v.utcnow())
    keys = pa.table({"run_id": [run_id], "model_version": [row["model_version"]]})
    with transaction(bind) as conn:
        check_references(conn, training_decisions, keys)
        upsert_rows(conn, training_decisions, [row])
    return 1


def write_actuals(
    bind: Engine | Connection, df: pd.DataFrame, run_id: str, bulk_rows: int = BULK_ROWS
) -> int:
    """Upsert observed targets: ``df`` has series_id, target_date and actual. A restated value
    replaces the stored one. Returns the number of rows written."""
    data = to_arrow(actuals, df, {"run_id": run_id, "updated_at": v.utcnow()})
    return upsert_table(bind, actuals, data, bulk_rows)


def upsert_model_version(bind: Engine | Connection, record: Mapping[str, Any]) -> None:
    """Insert or update one model version. On update only the keys in ``record`` change.

    A record without ``kind`` and ``status`` updates an existing version (LookupError if
    there is none). ``hyperparameters`` and ``metrics`` may be dicts (stored as JSON text);
    ``created_at`` defaults to now on insert.
    """
    unknown = sorted(set(record) - set(MODEL_VERSION_CONVERTERS))
    if unknown:
        raise ValueError(f"unknown model_versions fields {unknown}")
    if not record.get("version"):
        raise ValueError("a model version record needs a 'version'")
    if "kind" in record and record["kind"] not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {record['kind']!r}")
    row = {k: MODEL_VERSION_CONVERTERS[k](val) for k, val in record.items()}
    with transaction(bind) as conn:
        if {"kind", "status"} <= set(row):
            given = list(row)
            row.setdefault("created_at", v.utcnow())
            upsert_rows(conn, model_versions, [row], update_columns=given)
            return
        changes = {k: val for k, val in row.items() if k != "version"}
        if not changes:
            raise ValueError(f"nothing to update for model version {row['version']!r}")
        stmt = update(model_versions).where(model_versions.c.version == row["version"])
        if conn.execute(stmt.values(**changes)).rowcount == 0:
            raise LookupError(
                f"model version {row['version']!r} is not registered; a new version needs "
                "'kind' and 'status'"
            )


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
