"""Validation suites, reports, quarantine and the ValidationFailed message."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import fsspec
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.features import build_features
from pipeline_lib.validation import (
    ValidationFailed,
    ValidationReport,
    quarantine_batch,
    raise_if_failed,
    validate_batch,
)
from pipeline_lib.validation.suites import features_suite, prices_suite, suite_for, weather_suite
from pipeline_lib.validation.validate import check_freshness, run_gx

AS_OF = dt.date(2013, 5, 2)


@pytest.fixture
def prices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": ["SP500", "SP500", "WTI", "WTI"],
            "date": pd.to_datetime(["2013-05-01", "2013-05-02", "2013-05-01", "2013-05-02"]),
            "open": [1580.0, 1582.7, None, None],
            "high": [1591.0, 1598.6, None, None],
            "low": [1577.0, 1582.7, None, None],
            "close": [1582.7, 1597.6, 91.0, 93.5],
            "volume": [3.4e9, 3.7e9, None, None],
        }
    )[schema.PRICE_COLUMNS]


@pytest.fixture
def weather() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "location": ["seattle", "seattle"],
            "date": pd.to_datetime(["2013-05-01", "2013-05-02"]),
            "temp_max": [18.3, 21.1],
            "temp_min": [8.9, 10.0],
            "temp_mean": [13.6, 15.55],
            "precipitation": [0.0, 2.5],
            "wind_speed": [3.1, 4.4],
        }
    )[schema.WEATHER_COLUMNS]


def _checks(failures: list) -> list[str]:
    return [f.check for f in failures]


def _message(report: ValidationReport) -> str:
    with pytest.raises(ValidationFailed) as info:
        raise_if_failed([report], {report.key: "memory://quarantine/x"})
    return str(info.value)


def test_clean_batches_pass(prices: pd.DataFrame, weather: pd.DataFrame) -> None:
    for df, dataset in ((prices, schema.PRICES), (weather, schema.WEATHER)):
        report = validate_batch(df, dataset, AS_OF, "clean")
        assert report.success, report.summary()
        assert report.failures == [] and report.warnings == [] and report.skipped == []
        assert report.evaluated == report.successful > 10
        raise_if_failed([report])  # no exception


def test_close_only_prices_pass(prices: pd.DataFrame) -> None:
    close_only = prices[prices.series_id == "WTI"]
    assert close_only[["open", "high", "low", "volume"]].isna().all().all()
    report = validate_batch(close_only, schema.PRICES, AS_OF, "wti")
    assert report.success and not report.warnings, report.summary()


@pytest.mark.parametrize(
    ("column", "row", "value", "check", "shown"),
    [
        ("close", 1, -3.2, "close_positive", "series SP500 2013-05-02 close=-3.2"),
        ("low", 1, 1600.0, "high_ge_low", "series SP500 2013-05-02 high=1598.6 low=1600.0"),
        ("close", 3, None, "close_not_null", "series WTI 2013-05-02 close=None"),
        ("volume", 0, -1.0, "volume_non_negative", "series SP500 2013-05-01 volume=-1.0"),
    ],
)
def test_bad_price_values_fail(
    prices: pd.DataFrame, column: str, row: int, value: float | None, check: str, shown: str
) -> None:
    bad = prices.copy()
    bad.loc[row, column] = value
    report = validate_batch(bad, schema.PRICES, AS_OF, "bad")
    assert not report.success
    assert check in _checks(report.failures), report.summary()
    failure = next(f for f in report.failures if f.check == check)
    assert failure.unexpected_count == 1 and failure.severity == "critical"
    message = _message(report)
    assert check in message and shown in message and "memory://quarantine/x" in message


def test_duplicate_key_fails(prices: pd.DataFrame) -> None:
    report = validate_batch(pd.concat([prices, prices.iloc[[1]]]), schema.PRICES, AS_OF, "dup")
    assert _checks(report.failures) == ["key_unique"]
    assert report.failures[0].columns == ["series_id", "date"]
    assert report.failures[0].unexpected_count == 2  # both copies of the row
    assert "series SP500 2013-05-02" in _message(report)


def test_date_after_as_of_fails(prices: pd.DataFrame) -> None:
    report = validate_batch(prices, schema.PRICES, dt.date(2013, 5, 1), "leak")
    assert _checks(report.failures) == ["date_not_after_as_of"]
    assert report.failures[0].unexpected_count == 2
    message = _message(report)
    assert "date <= 2013-05-01" in message and "series WTI 2013-05-02" in message


def test_weather_out_of_range_fails(weather: pd.DataFrame) -> None:
    bad = weather.copy()
    bad.loc[1, "temp_max"] = 80.0
    bad.loc[0, "precipitation"] = -0.5
    report = validate_batch(bad, schema.WEATHER, AS_OF, "hot")
    assert _checks(report.failures) == ["temp_max_physical", "precipitation_physical"]
    message = _message(report)
    assert "location seattle 2013-05-02 temp_max=80.0" in message
    assert "location seattle 2013-05-01 precipitation=-0.5" in message


def test_missing_column_is_a_clear_failure(prices: pd.DataFrame) -> None:
    report = validate_batch(prices.drop(columns=["high"]), schema.PRICES, AS_OF, "narrow")
    assert _checks(report.failures) == ["columns"]
    assert "missing columns: ['high']" in report.failures[0].details
    assert "high_ge_low" in report.skipped and "high_type" in report.skipped
    assert "missing columns: ['high']" in _message(report)


def test_empty_and_mistyped_batches_fail_cleanly(prices: pd.DataFrame) -> None:
    empty = validate_batch(prices.iloc[:0], schema.PRICES, AS_OF, "empty")
    assert _checks(empty.failures) == ["not_empty"]
    text_dates = prices.assign(date=prices["date"].dt.strftime("%Y-%m-%d"))
    report = validate_batch(text_dates, schema.PRICES, AS_OF, "text")
    assert not report.success and "date_type" in _checks(report.failures)
    doubled = pd.concat([prices, prices[["close"]]], axis=1)
    assert _checks(validate_batch(doubled, schema.PRICES, AS_OF, "x").failures) == [
        "columns_distinct"
    ]


def test_warning_is_reported_but_does_not_fail(prices: pd.DataFrame) -> None:
    odd = prices.copy()
    odd.loc[0, "close"] = 1595.0  # above the day's high of 1591
    report = validate_batch(odd, schema.PRICES, AS_OF, "odd")
    assert report.success and report.failures == []
    assert _checks(report.warnings) == ["high_ge_close"]
    assert report.warnings[0].rows == [
        {"series_id": "SP500", "date": "2013-05-01", "high": 1591.0, "close": 1595.0}
    ]
    assert "warning  high_ge_close" in report.summary()
    raise_if_failed([report])  # warnings alone never raise


def test_input_unchanged_and_report_deterministic(prices: pd.DataFrame) -> None:
    df = prices.iloc[[3, 0, 2, 1]]  # a non-default index must survive too
    before = df.copy(deep=True)
    first = validate_batch(df, schema.PRICES, AS_OF, "same").to_dict()
    second = validate_batch(df, schema.PRICES, AS_OF, "same").to_dict()
    pd.testing.assert_frame_equal(df, before)
    assert json.dumps(first, allow_nan=False, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["gx_result"]["statistics"]["evaluated_expectations"] == first["evaluated"]


def test_quarantine_writes_batch_report_and_payloads(prices: pd.DataFrame, tmp_path) -> None:
    bad = prices.assign(close=-prices["close"])
    report = validate_batch(bad, schema.PRICES, AS_OF, "SP500/2013-05-02")
    now = dt.datetime(2013, 5, 3, 1, 2, 3, tzinfo=dt.UTC)
    raw = ["raw/prices/SP500/2013-05-02T010203Z.json"]
    path = quarantine_batch(str(tmp_path), report, bad, raw, now=now)
    assert path.startswith("file://") and "/quarantine/prices/SP500_2013-05-02-20130503T" in path
    fs, folder = fsspec.core.url_to_fs(path)
    assert sorted(fs.ls(folder, detail=False)) == [
        f"{folder}/{n}" for n in ("batch.parquet", "payloads.json", "report.json")
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(f"{folder}/batch.parquet"), bad)
    saved = json.loads(fs.cat_file(f"{folder}/report.json"))
    assert saved["success"] is False and saved["failures"][0]["check"] == "close_positive"
    assert json.loads(fs.cat_file(f"{folder}/payloads.json"))["payload_files"] == raw
    again = quarantine_batch(str(tmp_path), report, bad, raw, now=now)
    assert again != path  # same second: a fresh folder, nothing overwritten
    with pytest.raises(ValidationFailed) as info:
        raise_if_failed([report], {report.key: path})
    assert path in str(info.value) and info.value.quarantine_paths == {report.key: path}


def test_quarantine_on_an_fsspec_url(prices: pd.DataFrame) -> None:
    report = validate_batch(prices.iloc[:0], schema.PRICES, AS_OF, "empty")
    path = quarantine_batch("memory://validation-test", report, prices.iloc[:0])
    assert path.startswith("memory://") and "validation-test/quarantine/prices/empty-" in path
    fs, folder = fsspec.core.url_to_fs(path)
    try:
        assert fs.exists(f"{folder}/report.json") and fs.exists(f"{folder}/batch.parquet")
    finally:
        fs.rm("/validation-test", recursive=True)


def test_bundled_sample_passes() -> None:
    path = resources.files("pipeline_lib") / "sample_data" / "prices_SP500.csv"
    with resources.as_file(path) as csv:
        raw = pd.read_csv(csv, parse_dates=["date"])
    df = raw.assign(series_id="SP500", volume=raw["volume"].astype(float))[schema.PRICE_COLUMNS]
    report = validate_batch(df, schema.PRICES, df["date"].max().date(), "sample")
    assert report.success and report.row_count == len(df) > 500, report.summary()


def test_every_expectation_names_severity_and_risk() -> None:
    for suite in (prices_suite(AS_OF), weather_suite(AS_OF), features_suite(AS_OF)):
        checks = [e.meta["check"] for e in suite.expectations]
        assert len(checks) == len(set(checks))
        for e in suite.expectations:
            assert e.severity in ("critical", "warning") and e.meta["risk"]
    with pytest.raises(ValueError, match="no validation suite"):
        suite_for("trades", AS_OF)


def test_thresholds_reach_the_suite() -> None:
    t = ValidationConfig(max_staleness_days=2, max_gap_days=3, jump_zscore=4.5)
    bounds = {
        e.meta["check"]: getattr(e, "max_value", None) for e in prices_suite(AS_OF, t).expectations
    }
    assert (bounds["fresh"], bounds["no_long_gap"], bounds["close_no_jump"]) == (2, 3, 4.5)


def test_empty_batch_checks_curated_freshness(prices: pd.DataFrame) -> None:
    fresh = check_freshness(prices, schema.PRICES, dt.date(2013, 5, 3), "prices-SP500")
    assert fresh.success and fresh.warnings == [] and fresh.row_count == 0
    stale = check_freshness(prices, schema.PRICES, dt.date(2013, 5, 17), "prices-SP500")
    assert stale.success and [w.check for w in stale.warnings] == ["fresh"]
    assert "series SP500 2013-05-02 staleness_days=11.0" in stale.summary()
    nothing = check_freshness(None, schema.WEATHER, AS_OF, "weather-seattle")
    assert nothing.success and "no curated rows" in nothing.warnings[0].describe()


def _features() -> pd.DataFrame:
    dates = pd.bdate_range("2013-01-01", AS_OF)
    close = 100 + pd.Series(range(len(dates)), dtype="float64")
    prices = pd.DataFrame(
        {"series_id": "A", "date": dates, "open": close, "high": close + 1, "low": close - 1}
    ).assign(close=close, volume=1e6)
    weather = pd.DataFrame(columns=schema.WEATHER_COLUMNS).astype({"date": "datetime64[ns]"})
    return build_features(prices, weather, {"A": None}, AS_OF)


def test_features_suite() -> None:
    feats = _features()
    report = validate_batch(feats, schema.FEATURES, AS_OF, "features")
    assert report.success and report.warnings == [], report.summary()
    bad = feats.copy()
    bad.loc[3, "y"] = None
    bad.loc[5, "log_return"] = float("inf")
    bad = pd.concat([bad, bad.iloc[[7]]], ignore_index=True)
    report = validate_batch(bad, schema.FEATURES, dt.date(2013, 2, 1), "features")
    checks = _checks(report.failures)
    assert {"y_not_null", "log_return_finite", "key_unique", "date_not_after_as_of"} <= set(checks)
    assert "series A 2013-01-04 y=None" in _message(report)


def test_gx_keeps_no_reference_to_a_validated_frame() -> None:
    """GX's execution engine would hold the last batch until the next one: a night's whole
    features frame through the backtest. run_gx lets it go."""
    import gc
    import weakref

    import great_expectations as gx

    data = pd.DataFrame({"series_id": ["A"] * 50, "y": [float(i) for i in range(50)]})
    suite = gx.ExpectationSuite(
        name="not-null", expectations=[gx.expectations.ExpectColumnValuesToNotBeNull(column="y")]
    )
    alive = weakref.ref(data)
    assert run_gx(data, suite, {"result_format": "SUMMARY"}).success
    del data
    gc.collect()
    assert alive() is None
