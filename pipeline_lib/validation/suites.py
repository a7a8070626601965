"""Great Expectations suites as code: one per data set, each expectation naming its risk.

Severity uses GX's own ``severity`` field (GX Core >= 1.6): ``critical`` failures block the batch
(it is quarantined), ``warning`` failures are reported and the run goes on. Every expectation also
carries ``meta = {"check": <short name>, "risk": <risk>}``: the check name identifies it in
reports, the risk says what it guards (schema, completeness, types, nulls, duplicates, leakage,
ranges, consistency).

The as-of (forecast) date enters one expectation only, the leakage guard, so suites are built per
call (about 2 ms).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from pipeline_lib import schema

CRITICAL = "critical"
WARNING = "warning"

# Accepted pandas dtypes. Ids are checked with type_ "str": pandas 3 str, object of str, string.
DATE_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]
NUMBER_TYPES = ["float64", "float32", "Float64Dtype", "int64", "Int64Dtype"]


def _meta(check: str, risk: str, severity: str) -> dict[str, Any]:
    return {"severity": severity, "meta": {"check": check, "risk": risk}}


def _between(check: str, risk: str, severity: str, column: str, **bounds: Any) -> gxe.Expectation:
    """Values of ``column`` within bounds (nulls are skipped: close-only series pass)."""
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, **bounds, **_meta(check, risk, severity)
    )


def _a_ge_b(check: str, risk: str, severity: str, a: str, b: str) -> gxe.Expectation:
    """``a >= b`` row by row, ignoring rows where either is null."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=a,
        column_B=b,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        **_meta(check, risk, severity),
    )


def _not_null(column: str, severity: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToNotBeNull(
        column=column, **_meta(f"{column}_not_null", "nulls", severity)
    )


def _common(
    key: str, columns: list[str], values: list[str], as_of: dt.date
) -> list[gxe.Expectation]:
    """Schema, types, key nulls, duplicates and leakage: shared by every dated long table."""
    return [
        # schema: exactly the expected columns; a renamed, missing or extra column is caught.
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(columns), exact_match=True, **_meta("columns", "schema", CRITICAL)
        ),
        # completeness: an empty fetch (outage, wrong request) is not a valid batch.
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1, **_meta("not_empty", "completeness", CRITICAL)
        ),
        # types: ids are strings, dates naive datetimes, values numbers (not text, not tz-aware).
        gxe.ExpectColumnValuesToBeOfType(
            column=key, type_="str", **_meta(f"{key}_type", "types", CRITICAL)
        ),
        gxe.ExpectColumnValuesToBeInTypeList(
            column=schema.DATE, type_list=DATE_TYPES, **_meta("date_type", "types", CRITICAL)
        ),
        *(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=v, type_list=NUMBER_TYPES, **_meta(f"{v}_type", "types", CRITICAL)
            )
            for v in values
        ),
        # nulls: a row without its key cannot be stored, deduplicated or joined.
        _not_null(key, CRITICAL),
        _not_null(schema.DATE, CRITICAL),
        # duplicates: one row per key and date, or upserts and rolling features double count.
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[key, schema.DATE], **_meta("key_unique", "duplicates", CRITICAL)
        ),
        # leakage: nothing dated after the forecast date may enter a point-in-time run.
        _between(
            "date_not_after_as_of", "leakage", CRITICAL, schema.DATE, max_value=pd.Timestamp(as_of)
        ),
    ]


def prices_suite(as_of: dt.date) -> gx.ExpectationSuite:
    """Expectations for daily prices (``schema.PRICE_COLUMNS``) in a run for ``as_of``.

    open, high, low and volume may be entirely null (close-only series such as a spot price).
    """
    exps = _common(schema.SERIES_ID, schema.PRICE_COLUMNS, schema.PRICE_VALUES, as_of)
    exps += [
        # nulls: close is the forecast target; a missing close is a broken record.
        _not_null(schema.TARGET, CRITICAL),
        # ranges: prices are strictly positive; zero or negative is a feed or parsing error.
        *(
            _between(f"{c}_positive", "ranges", CRITICAL, c, min_value=0, strict_min=True)
            for c in ("open", "high", "low", "close")
        ),
        # ranges: traded volume is never negative.
        _between("volume_non_negative", "ranges", CRITICAL, "volume", min_value=0),
        # consistency: the day's high is at least its low (swapped or misparsed columns).
        _a_ge_b("high_ge_low", "consistency", CRITICAL, "high", "low"),
        # consistency (warning): open and close lie within the day's range; vendors sometimes
        # mix sessions (a close from the auction, a range from regular hours): suspicious only.
        _a_ge_b("high_ge_open", "consistency", WARNING, "high", "open"),
        _a_ge_b("high_ge_close", "consistency", WARNING, "high", "close"),
        _a_ge_b("open_ge_low", "consistency", WARNING, "open", "low"),
        _a_ge_b("close_ge_low", "consistency", WARNING, "close", "low"),
    ]
    return gx.ExpectationSuite(name=schema.PRICES, expectations=exps)


def weather_suite(as_of: dt.date) -> gx.ExpectationSuite:
    """Expectations for daily weather (``schema.WEATHER_COLUMNS``) in a run for ``as_of``."""
    exps = _common(schema.LOCATION, schema.WEATHER_COLUMNS, schema.WEATHER_VALUES, as_of)
    exps += [
        # ranges: air temperatures on Earth lie in -90..60 °C (catches °F and kelvin feeds).
        *(
            _between(f"{c}_physical", "ranges", CRITICAL, c, min_value=-90, max_value=60)
            for c in ("temp_max", "temp_min", "temp_mean")
        ),
        # consistency: the daily maximum is at least the daily minimum.
        _a_ge_b("temp_max_ge_temp_min", "consistency", CRITICAL, "temp_max", "temp_min"),
        # ranges: precipitation is 0 to under 2000 mm a day (the record is about 1,825 mm).
        _between(
            "precipitation_physical",
            "ranges",
            CRITICAL,
            "precipitation",
            min_value=0,
            max_value=2000,
            strict_max=True,
        ),
        # ranges: wind speed is 0 to under 120 m/s (the gust record is 113 m/s).
        _between(
            "wind_speed_physical",
            "ranges",
            CRITICAL,
            "wind_speed",
            min_value=0,
            max_value=120,
            strict_max=True,
        ),
        # nulls (warning): weather feeds have gaps; features fill them, but we want to know.
        *(_not_null(c, WARNING) for c in schema.WEATHER_VALUES),
        # consistency (warning): the daily mean lies between the minimum and the maximum.
        _a_ge_b("temp_max_ge_temp_mean", "consistency", WARNING, "temp_max", "temp_mean"),
        _a_ge_b("temp_mean_ge_temp_min", "consistency", WARNING, "temp_mean", "temp_min"),
        # ranges (warning): over 500 mm a day or a 60 m/s daily wind is possible but rare.
        _between("precipitation_plausible", "ranges", WARNING, "precipitation", max_value=500),
        _between("wind_speed_plausible", "ranges", WARNING, "wind_speed", max_value=60),
    ]
    return gx.ExpectationSuite(name=schema.WEATHER, expectations=exps)


SUITES: dict[str, Callable[[dt.date], gx.ExpectationSuite]] = {
    schema.PRICES: prices_suite,
    schema.WEATHER: weather_suite,
}


def suite_for(dataset: str, as_of: dt.date) -> gx.ExpectationSuite:
    """The suite of ``dataset`` (``schema.PRICES`` or ``schema.WEATHER``) for ``as_of``."""
    if dataset not in SUITES:
        raise ValueError(f"no validation suite for data set {dataset!r}; known: {sorted(SUITES)}")
    return SUITES[dataset](as_of)
