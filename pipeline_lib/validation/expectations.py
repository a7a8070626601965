"""The expectations the suites share (:mod:`pipeline_lib.validation.suites`): each with its
severity (``critical`` blocks the batch, ``warning`` is reported) and ``meta`` naming its check
and the risk it guards; the checks every dated long table gets (schema, types, key nulls,
duplicates, leakage) and those on the derived columns (freshness, gaps, jumps, absurd
changes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.validation.derived import ABSURD_Z, GAP, JUMP, STALENESS

CRITICAL = "critical"
WARNING = "warning"

# Accepted pandas dtypes. Ids are checked with type_ "str": pandas 3 str, object of str, string.
DATE_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]
NUMBER_TYPES = ["float64", "float32", "Float64Dtype", "int64", "Int64Dtype"]


def meta(check: str, risk: str, severity: str) -> dict[str, Any]:
    return {"severity": severity, "meta": {"check": check, "risk": risk}}


def between(check: str, risk: str, severity: str, column: str, **bounds: Any) -> gxe.Expectation:
    """Values of ``column`` within bounds (nulls are skipped: close-only series pass)."""
    return gxe.ExpectColumnValuesToBeBetween(column=column, **bounds, **meta(check, risk, severity))


def a_ge_b(check: str, risk: str, severity: str, a: str, b: str) -> gxe.Expectation:
    """``a >= b`` row by row, ignoring rows where either is null."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=a,
        column_B=b,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        **meta(check, risk, severity),
    )


def not_null(column: str, severity: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToNotBeNull(
        column=column, **meta(f"{column}_not_null", "nulls", severity)
    )


def common(
    key: str, columns: list[str], values: list[str], as_of: dt.date
) -> list[gxe.Expectation]:
    """Schema, types, key nulls, duplicates and leakage: shared by every dated long table."""
    return [
        # schema: exactly the expected columns; a renamed, missing or extra column is caught.
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(columns), exact_match=True, **meta("columns", "schema", CRITICAL)
        ),
        # completeness: an empty fetch (outage, wrong request) is not a valid batch.
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1, **meta("not_empty", "completeness", CRITICAL)
        ),
        # types: ids are strings, dates naive datetimes, values numbers (not text, not tz-aware).
        gxe.ExpectColumnValuesToBeOfType(
            column=key, type_="str", **meta(f"{key}_type", "types", CRITICAL)
        ),
        gxe.ExpectColumnValuesToBeInTypeList(
            column=schema.DATE, type_list=DATE_TYPES, **meta("date_type", "types", CRITICAL)
        ),
        *(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=v, type_list=NUMBER_TYPES, **meta(f"{v}_type", "types", CRITICAL)
            )
            for v in values
        ),
        # nulls: a row without its key cannot be stored, deduplicated or joined.
        not_null(key, CRITICAL),
        not_null(schema.DATE, CRITICAL),
        # duplicates: one row per key and date, or upserts and rolling features double count.
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[key, schema.DATE], **meta("key_unique", "duplicates", CRITICAL)
        ),
        # leakage: nothing dated after the forecast date may enter a point-in-time run.
        between(
            "date_not_after_as_of", "leakage", CRITICAL, schema.DATE, max_value=pd.Timestamp(as_of)
        ),
    ]


def freshness(t: ValidationConfig) -> gxe.Expectation:
    # freshness (warning): a feed that stopped updating (delisted symbol, broken API key, moved
    # file) keeps "passing" with old data; forecasts would silently be made from stale history.
    # staleness_days counts business days (prices) or days (weather) after the newest date.
    return between("fresh", "freshness", WARNING, STALENESS, max_value=t.max_staleness_days)


def continuity(t: ValidationConfig, change: str) -> list[gxe.Expectation]:
    """Freshness, gaps and jumps on the derived columns (warnings: real data has them too), and
    the absurd change (critical)."""
    return [
        freshness(t),
        # continuity (warning): a hole in the history (outage, a partial backfill, a batch that
        # starts after the last curated day) skews lags and rolling features across it.
        # gap_days counts missing business days (prices) or days (weather) since the previous
        # row of the same key.
        between("no_long_gap", "continuity", WARNING, GAP, max_value=t.max_gap_days),
        # outliers (warning): a sudden jump (in close, or temp_mean) is a split, a unit or
        # currency change or a bad tick more often than a real move; it distorts scaling and
        # training. jump_zscore is |change| in standard deviations of the key's other changes.
        between(f"{change}_no_jump", "outliers", WARNING, JUMP, max_value=t.jump_zscore),
        # outliers: a change no market or weather makes (a close of 1e12 in a stock near 50, a
        # mistyped or rescaled value) would be curated, trained on and forecast from.
        # jump_robust_z is the row's change in robust std devs (median, MAD-based scale) of the
        # key's changes, the smaller of its change from the previous row and the one before, so
        # the absurd row is named, not the next one that comes back to normal.
        between(
            f"{change}_not_absurd", "outliers", CRITICAL, ABSURD_Z, max_value=t.absurd_jump_robust_z
        ),
    ]
