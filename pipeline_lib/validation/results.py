"""Turning Great Expectations results into report values: failures, rules in words, JSON."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline_lib.validation.report import MAX_ROWS, ExpectationFailure

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )


def check_of(expectation: Any) -> str:
    """The check name of an Expectation or ExpectationConfiguration (from its meta)."""
    fallback = getattr(expectation, "type", None) or getattr(expectation, "expectation_type", "")
    return str((expectation.meta or {}).get("check", fallback))


def columns_of(expectation: Any) -> list[str]:
    """The columns an expectation reads; table-level checks read none."""
    config = getattr(expectation, "configuration", expectation)
    kwargs = config.kwargs
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return list(kwargs.get("column_list") or [])


def failure_of(r: ExpectationValidationResult) -> ExpectationFailure:
    """An ExpectationFailure from one failed GX result."""
    return failure_from(r.expectation_config, r.result or {}, r.exception_info or {})


def failure_from(
    config: Any, res: dict[str, Any], exception_info: dict[str, Any]
) -> ExpectationFailure:
    """An ExpectationFailure from a failed expectation's configuration, its GX ``result`` dict
    (counts, ``partial_unexpected_index_list``) and GX's ``exception_info``."""
    rows = [jsonable(dict(row)) for row in res.get("partial_unexpected_index_list") or []]
    return ExpectationFailure(
        check=check_of(config),
        expectation_type=config.type,
        columns=columns_of(config),
        severity=str(getattr(config.severity, "value", config.severity)),
        risk=str((config.meta or {}).get("risk", "")),
        unexpected_count=res.get("unexpected_count"),
        rows=rows[:MAX_ROWS],
        expected=_expected(config.type, config.kwargs),
        details=_details(res, exception_info),
    )


def _expected(kind: str, kw: dict[str, Any]) -> str:
    """The rule of an expectation in words: ``close > 0``, ``high >= low``, ``unique``."""
    col = kw.get("column", "")
    if kind == "expect_column_values_to_be_between":
        parts = []
        if kw.get("min_value") is not None:
            parts.append(
                f"{col} {'>' if kw.get('strict_min') else '>='} {jsonable(kw['min_value'])}"
            )
        if kw.get("max_value") is not None:
            parts.append(
                f"{col} {'<' if kw.get('strict_max') else '<='} {jsonable(kw['max_value'])}"
            )
        return " and ".join(parts)
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        return f"{kw['column_A']} {'>=' if kw.get('or_equal') else '>'} {kw['column_B']}"
    if kind == "expect_column_values_to_not_be_null":
        return f"{col} not null"
    if kind == "expect_compound_columns_to_be_unique":
        return f"({', '.join(kw['column_list'])}) unique"
    if kind == "expect_column_values_to_be_of_type":
        return f"{col} of type {kw['type_']}"
    if kind == "expect_column_values_to_be_in_type_list":
        return f"{col} of type {' or '.join(kw['type_list'])}"
    if kind == "expect_table_columns_to_match_set":
        return f"columns {sorted(kw['column_set'])}"
    if kind == "expect_table_row_count_to_be_between":
        return f"at least {kw.get('min_value')} row(s)"
    return ""


def _details(res: dict[str, Any], exception_info: dict[str, Any]) -> str:
    """What a table-level check saw, or the error GX raised while checking."""
    error = _exception_message(exception_info)
    if error:
        return f"error: {error}"
    mismatched = (res.get("details") or {}).get("mismatched")
    if mismatched:
        return "; ".join(f"{k} columns: {sorted(v)}" for k, v in sorted(mismatched.items()) if v)
    if "observed_value" in res:
        return f"observed {jsonable(res['observed_value'])}"
    return ""


def raised(info: dict[str, Any] | None) -> bool:
    """Whether GX raised an error while checking an expectation (flat, or keyed by metric id)."""
    info = info or {}
    if info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _exception_message(info: dict[str, Any]) -> str:
    """GX reports errors flat, or keyed by metric id; return the first message."""
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "")
    return ""


def jsonable(value: Any) -> Any:
    """JSON-safe copy: timestamps as ISO dates, NaN as None, numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    return value
