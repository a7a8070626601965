"""Writing the nightly's selection: per series and horizon bucket, the model or the named
combination published, its weights and the evidence behind the choice (``model_selections``).

Replaced per (series, forecast date) like the forecasts: a rerun deletes that key's rows and
inserts the new ones, so stale buckets never linger. Every weight set is checked (the weights
of a bucket sum to 1) and every value is plain JSON before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Engine, String

from pipeline_lib.db import values as v
from pipeline_lib.db.frames import arrow_type
from pipeline_lib.db.tables import model_selections
from pipeline_lib.db.upsert import replace_rows

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
