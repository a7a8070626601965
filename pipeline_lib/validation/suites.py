"""Great Expectations suites as code: one per data set, each expectation naming its risk.

Severity uses GX's own ``severity`` field (GX Core >= 1.6): ``critical`` failures block the batch
(it is quarantined), ``warning`` failures are reported and the run goes on. Every expectation also
carries ``meta = {"check": <short name>, "risk": <risk>}``: the check name identifies it in
reports, the risk says what it guards (schema, completeness, types, nulls, duplicates, leakage,
ranges, consistency).

The as-of (forecast) date enters one expectation only, the leakage guard, so suites are built per
call (about 2 ms). The expectations they share are :mod:`pipeline_lib.validation.expectations`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.validation.derived import DERIVED, FACTOR
from pipeline_lib.validation.expectations import (
    CRITICAL,
    DATE_TYPES,
    NUMBER_TYPES,
    WARNING,
    a_ge_b,
    between,
    common,
    continuity,
    freshness,
    meta,
    not_null,
)


def prices_suite(
    as_of: dt.date, thresholds: ValidationConfig | None = None, signed: bool = False
) -> gx.ExpectationSuite:
    """Expectations for daily prices (``schema.PRICE_COLUMNS``) in a run for ``as_of``.

    open, high, low and volume may be entirely null (close-only series such as a spot price).
    The frame validated also carries the derived columns (``derived.DERIVED``). ``signed``:
    prices that may be zero or negative (electricity, ``SeriesConfig.negative_prices``): no
    positivity and no ratio checks; the jump checks work on changes instead of log changes.
    """
    t = thresholds or ValidationConfig()
    columns = [*schema.PRICE_COLUMNS, *DERIVED]
    exps = common(schema.SERIES_ID, columns, schema.PRICE_VALUES, as_of)
    # ranges: prices are strictly positive; zero or negative is a feed or parsing error
    # (except where the market has negative prices: then nothing bounds them).
    positive = [
        between(f"{c}_positive", "ranges", CRITICAL, c, min_value=0, strict_min=True)
        for c in ("open", "high", "low", "close")
    ]
    exps += [
        # nulls: close is the forecast target; a missing close is a broken record.
        not_null(schema.TARGET, CRITICAL),
        *([] if signed else positive),
        # ranges: traded volume is never negative.
        between("volume_non_negative", "ranges", CRITICAL, "volume", min_value=0),
        # consistency: the day's high is at least its low (swapped or misparsed columns).
        a_ge_b("high_ge_low", "consistency", CRITICAL, "high", "low"),
        # consistency (warning): open and close lie within the day's range; vendors sometimes
        # mix sessions (a close from the auction, a range from regular hours): suspicious only.
        a_ge_b("high_ge_open", "consistency", WARNING, "high", "open"),
        a_ge_b("high_ge_close", "consistency", WARNING, "high", "close"),
        a_ge_b("open_ge_low", "consistency", WARNING, "open", "low"),
        a_ge_b("close_ge_low", "consistency", WARNING, "close", "low"),
        *continuity(t, "close"),
    ]
    if not signed:  # a ratio means nothing across zero
        # outliers: a day-on-day factor beyond absurd_jump_factor (up or down) is a unit,
        # currency or typing error, whatever the history (it needs one previous row only).
        # jump_factor is max(close / previous, previous / close), on the same smaller change.
        exps.append(
            between(
                "close_factor_not_absurd",
                "outliers",
                CRITICAL,
                FACTOR,
                max_value=t.absurd_jump_factor,
            )
        )
    return gx.ExpectationSuite(name=schema.PRICES, expectations=exps)


MAX_COVARIATE_REACH_DAYS = 366  # no configurable known_ahead reaches further


def covariates_suite(
    as_of: dt.date, thresholds: ValidationConfig | None = None, signed: bool = False
) -> gx.ExpectationSuite:
    """Expectations for covariate values as issued (``schema.COVARIATE_COLUMNS``), long.

    ``thresholds`` and ``signed`` are accepted for a uniform signature: covariates (a load,
    a temperature, a net position) have no sign rule.
    """
    exps = [
        # schema: exactly the expected columns.
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(schema.COVARIATE_COLUMNS),
            exact_match=True,
            **meta("columns", "schema", CRITICAL),
        ),
        # types: ids and names are strings, dates naive datetimes, values numbers.
        *(
            gxe.ExpectColumnValuesToBeOfType(
                column=c, type_="str", **meta(f"{c}_type", "types", CRITICAL)
            )
            for c in (schema.SERIES_ID, schema.COVARIATE)
        ),
        *(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=c, type_list=DATE_TYPES, **meta(f"{c}_type", "types", CRITICAL)
            )
            for c in (schema.DATE, schema.ISSUED)
        ),
        gxe.ExpectColumnValuesToBeInTypeList(
            column=schema.VALUE, type_list=NUMBER_TYPES, **meta("value_type", "types", CRITICAL)
        ),
        # nulls: a value without its key, its dates or a number cannot be used.
        *(not_null(c, CRITICAL) for c in schema.COVARIATE_COLUMNS),
        # duplicates: one value per series, covariate, day and issue time.
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=schema.COVARIATE_KEY, **meta("key_unique", "duplicates", CRITICAL)
        ),
        # leakage: a value issued after the forecast date may not enter a point-in-time run.
        between(
            "issued_not_after_as_of",
            "leakage",
            CRITICAL,
            schema.ISSUED,
            max_value=pd.Timestamp(as_of),
        ),
        # leakage: a value is issued on or before the day it is for (otherwise it is an
        # observation, a past covariate, not a forecast); checked as date >= issued.
        a_ge_b("issued_not_after_date", "leakage", CRITICAL, schema.DATE, schema.ISSUED),
        # ranges: finite values (an inf would poison scaling and training).
        between(
            "value_finite",
            "ranges",
            CRITICAL,
            schema.VALUE,
            min_value=-MAX_ABS_FEATURE,
            max_value=MAX_ABS_FEATURE,
        ),
        # ranges: no value reaches beyond the longest known_ahead a config can declare.
        between(
            "date_within_reach",
            "leakage",
            CRITICAL,
            schema.DATE,
            max_value=pd.Timestamp(as_of) + pd.Timedelta(days=MAX_COVARIATE_REACH_DAYS),
        ),
    ]
    return gx.ExpectationSuite(name=schema.COVARIATES, expectations=exps)


def weather_suite(
    as_of: dt.date, thresholds: ValidationConfig | None = None, signed: bool = False
) -> gx.ExpectationSuite:
    """Expectations for daily weather (``schema.WEATHER_COLUMNS``) in a run for ``as_of``.

    The frame validated also carries the derived columns (``derived.DERIVED``). ``signed`` is
    accepted for a uniform signature: weather values have their own physical ranges.
    """
    t = thresholds or ValidationConfig()
    columns = [*schema.WEATHER_COLUMNS, *DERIVED]
    exps = common(schema.LOCATION, columns, schema.WEATHER_VALUES, as_of)
    exps += [
        # ranges: air temperatures on Earth lie in -90..60 °C (catches °F and kelvin feeds).
        *(
            between(f"{c}_physical", "ranges", CRITICAL, c, min_value=-90, max_value=60)
            for c in ("temp_max", "temp_min", "temp_mean")
        ),
        # consistency: the daily maximum is at least the daily minimum.
        a_ge_b("temp_max_ge_temp_min", "consistency", CRITICAL, "temp_max", "temp_min"),
        # ranges: precipitation is 0 to under 2000 mm a day (the record is about 1,825 mm).
        between(
            "precipitation_physical",
            "ranges",
            CRITICAL,
            "precipitation",
            min_value=0,
            max_value=2000,
            strict_max=True,
        ),
        # ranges: wind speed is 0 to under 120 m/s (the gust record is 113 m/s).
        between(
            "wind_speed_physical",
            "ranges",
            CRITICAL,
            "wind_speed",
            min_value=0,
            max_value=120,
            strict_max=True,
        ),
        # nulls (warning): weather feeds have gaps; features fill them, but we want to know.
        *(not_null(c, WARNING) for c in schema.WEATHER_VALUES),
        # consistency (warning): the daily mean lies between the minimum and the maximum.
        a_ge_b("temp_max_ge_temp_mean", "consistency", WARNING, "temp_max", "temp_mean"),
        a_ge_b("temp_mean_ge_temp_min", "consistency", WARNING, "temp_mean", "temp_min"),
        # ranges (warning): over 500 mm a day or a 60 m/s daily wind is possible but rare.
        between("precipitation_plausible", "ranges", WARNING, "precipitation", max_value=500),
        between("wind_speed_plausible", "ranges", WARNING, "wind_speed", max_value=60),
        *continuity(t, "temp_mean"),
    ]
    return gx.ExpectationSuite(name=schema.WEATHER, expectations=exps)


# Feature columns the model reads without filling: the target, the momentum ratio (defined from
# the first row on) and the calendar encodings. Returns, their rolling statistics and weather are
# null by design on a series' first rows, for close-only series or without a weather location.
FEATURES_FILLED = [schema.Y, "price_to_mean_28", *schema.CALENDAR_FEATURES]
FEATURE_VALUES = [c for c in schema.FEATURE_COLUMNS if c not in schema.FEATURE_KEY]
MAX_ABS_FEATURE = 1e12  # far beyond any price or feature; catches inf and overflow


def features_suite(
    as_of: dt.date,
    thresholds: ValidationConfig | None = None,
    signed: bool = False,
    covariates: list[str] | None = None,
) -> gx.ExpectationSuite:
    """Expectations for the feature frame (``schema.FEATURE_COLUMNS`` and the ``covariates``
    columns of the feature set) built for ``as_of``.

    ``thresholds`` is accepted for a uniform signature; the feature checks have no knobs.
    ``signed``: some series may have zero or negative prices (no positivity check on y).
    Covariate columns may be null (not issued: masked), never infinite.
    """
    extra = list(covariates or [])
    values = [*FEATURE_VALUES, *extra]
    exps = common(schema.SERIES_ID, [*schema.FEATURE_COLUMNS, *extra], values, as_of)
    # ranges: the target is a price; log returns need it strictly positive.
    positive = between("y_positive", "ranges", CRITICAL, schema.Y, min_value=0, strict_min=True)
    exps += [
        # nulls: the target and the always-defined features feed the model as they are.
        *(not_null(c, CRITICAL) for c in FEATURES_FILLED),
        *([] if signed else [positive]),
        # ranges: every value is finite (an inf or overflow would poison scaling and training).
        *(
            between(
                f"{c}_finite",
                "ranges",
                CRITICAL,
                c,
                min_value=-MAX_ABS_FEATURE,
                max_value=MAX_ABS_FEATURE,
            )
            for c in values
        ),
        # ranges: cyclical calendar encodings are sines and cosines.
        *(
            between(f"{c}_unit_range", "ranges", CRITICAL, c, min_value=-1, max_value=1)
            for c in schema.CALENDAR_FEATURES
        ),
    ]
    return gx.ExpectationSuite(name=schema.FEATURES, expectations=exps)


def freshness_suite(
    dataset: str, thresholds: ValidationConfig | None = None
) -> gx.ExpectationSuite:
    """Freshness alone, for a run that brought nothing new: checked on curated data's newest
    row per key (columns key, date, staleness_days)."""
    return gx.ExpectationSuite(
        name=dataset, expectations=[freshness(thresholds or ValidationConfig())]
    )


SUITES: dict[str, Callable[..., gx.ExpectationSuite]] = {
    schema.PRICES: prices_suite,
    schema.WEATHER: weather_suite,
    schema.FEATURES: features_suite,
    schema.COVARIATES: covariates_suite,
}


def suite_for(
    dataset: str, as_of: dt.date, thresholds: ValidationConfig | None = None, **options: Any
) -> gx.ExpectationSuite:
    """The suite of ``dataset`` (prices, weather, features or covariates) for ``as_of``;
    ``options`` are the suite's own (``signed`` for prices and features, ``covariates`` for
    features)."""
    if dataset not in SUITES:
        raise ValueError(f"no validation suite for data set {dataset!r}; known: {sorted(SUITES)}")
    return SUITES[dataset](as_of, thresholds, **options)
