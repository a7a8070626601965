"""A matrix of bad inputs at the validation level: each names the check that fires, its severity,
the column and some offending rows. The batch is a week of prices (or weather) after ~5 months of
curated history, validated as the gate does (history given, default thresholds)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.validation import ValidationFailed, ValidationReport, raise_if_failed
from pipeline_lib.validation import validate_batch as validate

AS_OF = dt.date(2013, 5, 31)  # a Friday
BATCH_START = pd.Timestamp("2013-05-27")


def _prices() -> pd.DataFrame:
    """SP500 with a full OHLCV row, WTI close-only; business days, 1% daily moves."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2013-01-01", AS_OF)
    frames = []
    for sid, level in (("SP500", 1500.0), ("WTI", 95.0)):
        close = level * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
        frame = pd.DataFrame({"series_id": sid, "date": dates, "close": close.round(2)})
        if sid == "SP500":
            frame["open"] = frame["close"]
            frame["high"] = frame["close"] + 5.0
            frame["low"] = frame["close"] - 5.0
            frame["volume"] = 3.5e9
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).reindex(columns=schema.PRICE_COLUMNS)


def _weather() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    dates = pd.date_range("2013-01-01", AS_OF)
    mean = 10 + np.cumsum(rng.normal(0, 0.5, len(dates))).round(2)
    return pd.DataFrame(
        {
            "location": "seattle",
            "date": dates,
            "temp_max": mean + 5,
            "temp_min": mean - 5,
            "temp_mean": mean,
            "precipitation": 1.5,
            "wind_speed": 3.0,
        }
    )[schema.WEATHER_COLUMNS]


PRICES, WEATHER = _prices(), _weather()


def _split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    new = df["date"] >= BATCH_START
    return df[new].reset_index(drop=True), df[~new].reset_index(drop=True)


def _set(where: dict, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Set ``column`` to ``value`` on the batch row matching ``where`` (key and date)."""

    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        mask = np.logical_and.reduce([df[k] == v for k, v in where.items()])
        df.loc[mask, column] = value
        return df

    return change


SP_29 = {"series_id": "SP500", "date": pd.Timestamp("2013-05-29")}
WTI_29 = {"series_id": "WTI", "date": pd.Timestamp("2013-05-29")}
SEA_29 = {"location": "seattle", "date": pd.Timestamp("2013-05-29")}


def _high_below_low(df: pd.DataFrame) -> pd.DataFrame:
    row = (df.series_id == "SP500") & (df.date == pd.Timestamp("2013-05-29"))
    return df.assign(high=df["high"].where(~row, df["low"] - 1.0))


def _jump(df: pd.DataFrame) -> pd.DataFrame:
    """The last SP500 day 20% up (20 std devs: moderate, a warning), its whole OHLC range with
    it (so it stays consistent)."""
    df = df.copy()
    row = (df.series_id == "SP500") & (df.date == pd.Timestamp(AS_OF))
    df.loc[row, ["open", "high", "low", "close"]] *= 1.2
    return df


def _hot(df: pd.DataFrame) -> pd.DataFrame:
    """Seattle at 55 °C on 29 May (a °F-like slip, yet within the physical range)."""
    row = (df.location == "seattle") & (df.date == pd.Timestamp("2013-05-29"))
    return df.assign(
        temp_max=df["temp_max"].where(~row, 58.0),
        temp_min=df["temp_min"].where(~row, 52.0),
        temp_mean=df["temp_mean"].where(~row, 55.0),
    )


def _future(df: pd.DataFrame) -> pd.DataFrame:
    row = (df.series_id == "SP500") & (df.date == pd.Timestamp(AS_OF))
    return df.assign(date=df["date"].where(~row, pd.Timestamp("2013-06-03")))


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    row = (df.series_id == "SP500") & (df.date == pd.Timestamp("2013-05-29"))
    return pd.concat([df, df[row]], ignore_index=True)


# id: (dataset, change to the batch, as_of, history cut, [(check, severity)], columns, shown)
CASES = {
    "duplicate_dates": (
        schema.PRICES,
        _duplicate,
        AS_OF,
        None,
        [("key_unique", "critical")],
        ["series_id", "date"],
        "series SP500 2013-05-29",
    ),
    "nan_close": (
        schema.PRICES,
        _set(WTI_29, "close", np.nan),
        AS_OF,
        None,
        [("close_not_null", "critical")],
        ["close"],
        "series WTI 2013-05-29 close=None",
    ),
    "negative_price": (
        schema.PRICES,
        _set(SP_29, "low", -1.0),
        AS_OF,
        None,
        [("low_positive", "critical")],
        ["low"],
        "series SP500 2013-05-29 low=-1.0",
    ),
    "zero_price": (
        schema.PRICES,
        _set(WTI_29, "close", 0.0),
        AS_OF,
        None,
        [("close_positive", "critical")],
        ["close"],
        "series WTI 2013-05-29 close=0.0",
    ),
    "high_below_low": (
        schema.PRICES,
        _high_below_low,
        AS_OF,
        None,
        # high < low forces high below open and close too: those consistency warnings fire
        [("high_ge_low", "critical"), ("high_ge_open", "warning"), ("high_ge_close", "warning")],
        ["high", "low"],
        "series SP500 2013-05-29 high=",
    ),
    "impossible_temperature": (
        schema.WEATHER,
        _set(SEA_29, "temp_max", 80.0),
        AS_OF,
        None,
        [("temp_max_physical", "critical")],
        ["temp_max"],
        "location seattle 2013-05-29 temp_max=80.0",
    ),
    "negative_precipitation": (
        schema.WEATHER,
        _set(SEA_29, "precipitation", -0.5),
        AS_OF,
        None,
        [("precipitation_physical", "critical")],
        ["precipitation"],
        "location seattle 2013-05-29 precipitation=-0.5",
    ),
    "negative_wind": (
        schema.WEATHER,
        _set(SEA_29, "wind_speed", -2.0),
        AS_OF,
        None,
        [("wind_speed_physical", "critical")],
        ["wind_speed"],
        "location seattle 2013-05-29 wind_speed=-2.0",
    ),
    "date_in_future": (
        schema.PRICES,
        _future,
        AS_OF,
        None,
        [("date_not_after_as_of", "critical")],
        ["date"],
        "series SP500 2013-06-03",
    ),
    "object_dtype": (  # parse makes numbers; a frame built by hand may carry object columns
        schema.PRICES,
        lambda df: df.astype({"close": object}),
        AS_OF,
        None,
        [("close_type", "critical")],
        ["close"],
        "of type float64 or",
    ),
    "missing_column": (
        schema.PRICES,
        lambda df: df.drop(columns=["volume"]),
        AS_OF,
        None,
        [("columns", "critical")],
        [],
        "missing columns: ['volume']",
    ),
    "extra_column": (
        schema.PRICES,
        lambda df: df.assign(adj_close=df["close"]),
        AS_OF,
        None,
        [("columns", "critical")],
        [],
        "unexpected columns: ['adj_close']",
    ),
    "stale": (  # the same clean week, validated two weeks later
        schema.PRICES,
        lambda df: df,
        dt.date(2013, 6, 14),
        None,
        [("fresh", "warning")],
        ["staleness_days"],
        "series SP500 2013-05-31 staleness_days=10",
    ),
    "gap_before_batch": (  # curated data stops on 10 May: 13-24 May (10 business days) missing
        schema.PRICES,
        lambda df: df,
        AS_OF,
        pd.Timestamp("2013-05-10"),
        [("no_long_gap", "warning")],
        ["gap_days"],
        "series SP500 2013-05-27 gap_days=10",
    ),
    "sudden_jump": (  # moderate: a warning only, not absurd
        schema.PRICES,
        _jump,
        AS_OF,
        None,
        [("close_no_jump", "warning")],
        ["jump_zscore"],
        "series SP500 2013-05-31 jump_zscore=",
    ),
    "absurd_close": (  # a close of 1e12 for a day in a series near 90; the next day is normal
        schema.PRICES,
        _set(WTI_29, "close", 1e12),
        AS_OF,
        None,
        [
            ("close_not_absurd", "critical"),
            ("close_factor_not_absurd", "critical"),
            ("close_no_jump", "warning"),  # leave-one-out z of the spike and of the day after
        ],
        ["jump_robust_z"],
        "series WTI 2013-05-29 jump_robust_z=",
    ),
    "absurd_temperature": (
        schema.WEATHER,
        _hot,
        AS_OF,
        None,
        [("temp_mean_not_absurd", "critical"), ("temp_mean_no_jump", "warning")],
        ["jump_robust_z"],
        "location seattle 2013-05-29 jump_robust_z=",
    ),
}


def _summary(report: ValidationReport) -> str:
    """The text a run shows: ValidationFailed's message when it fails, else the summary."""
    try:
        raise_if_failed([report])
    except ValidationFailed as exc:
        return f"{exc}\n{report.summary()}"
    return report.summary()


@pytest.mark.parametrize(
    ("dataset", "change", "as_of", "history_to", "fired", "columns", "shown"),
    list(CASES.values()),
    ids=list(CASES),
)
def test_bad_input_fires_exactly_its_check(
    dataset, change, as_of, history_to, fired, columns, shown
) -> None:
    batch, history = _split(PRICES if dataset == schema.PRICES else WEATHER)
    if history_to is not None:
        history = history[history["date"] <= history_to]
    bad = change(batch)
    report = validate(bad, dataset, as_of, "matrix", history=history)
    found = [(f.check, f.severity) for f in [*report.failures, *report.warnings]]
    assert found == fired, report.summary()
    check, severity = fired[0]
    failure = next(f for f in [*report.failures, *report.warnings] if f.check == check)
    assert failure.columns == columns
    assert report.success is (severity == "warning")
    text = _summary(report)
    assert check in text and shown in text, text
    if columns:
        assert failure.rows and all(r.get("date") for r in failure.rows)  # rows by key and date
        assert all(c in text for c in columns)


def test_clean_batches_pass_without_warnings() -> None:
    for dataset, frame in ((schema.PRICES, PRICES), (schema.WEATHER, WEATHER)):
        batch, history = _split(frame)
        report = validate(batch, dataset, AS_OF, "clean", history=history)
        assert report.success and report.failures == [] and report.warnings == [], report.summary()
        assert report.skipped == [] and report.evaluated == report.successful


def test_out_of_order_rows_are_fine() -> None:
    """Row order is no defect: curated storage sorts by key and date on write, and the derived
    continuity checks sort before comparing neighbours. A shuffled batch passes, no warnings."""
    batch, history = _split(PRICES)
    shuffled = batch.sample(frac=1.0, random_state=3)
    assert not shuffled["date"].is_monotonic_increasing
    report = validate(shuffled, schema.PRICES, AS_OF, "shuffled", history=history)
    assert report.success and report.warnings == [], report.summary()


def test_thresholds_are_configurable() -> None:
    batch, history = _split(PRICES)
    holed = history[history["date"] <= pd.Timestamp("2013-05-10")]
    loose = ValidationConfig(max_gap_days=10)
    assert validate(batch, schema.PRICES, AS_OF, "gap", holed, loose).warnings == []
    strict = ValidationConfig(max_staleness_days=0)
    report = validate(batch, schema.PRICES, dt.date(2013, 6, 3), "stale", history, strict)
    assert [w.check for w in report.warnings] == ["fresh"]


def test_gap_inside_the_batch_without_history() -> None:
    """Weather counts calendar days: a hole of 6 days inside the batch is a gap above 5."""
    batch = WEATHER[WEATHER["date"] >= pd.Timestamp("2013-05-01")]
    holed = batch[(batch["date"] < "2013-05-10") | (batch["date"] > "2013-05-15")]
    report = validate(holed, schema.WEATHER, AS_OF, "holed")
    assert [(w.check, w.rows[0]["date"], w.rows[0]["gap_days"]) for w in report.warnings] == [
        ("no_long_gap", "2013-05-16", 6.0)
    ]


def test_absurd_close_names_the_spike_not_the_day_after() -> None:
    """A close of 1e12 in a stock near 50: critical, naming its day only (the day after, back
    near 50, is far from the spike but not from the day before it)."""
    dates = pd.bdate_range("2013-01-01", AS_OF)
    rng = np.random.default_rng(3)
    close = (50 * np.exp(np.cumsum(rng.normal(0, 0.015, len(dates))))).round(2)
    stock = pd.DataFrame({"series_id": "ACME", "date": dates, "close": close}).reindex(
        columns=schema.PRICE_COLUMNS
    )
    batch, history = _split(stock)
    report = validate(_set({"date": pd.Timestamp("2013-05-29")}, "close", 1e12)(batch),
                      schema.PRICES, AS_OF, "acme", history=history)  # fmt: skip
    assert not report.success
    absurd = {f.check: f for f in report.failures}
    assert sorted(absurd) == ["close_factor_not_absurd", "close_not_absurd"], report.summary()
    for failure in absurd.values():
        assert failure.unexpected_count == 1
        assert [r["date"] for r in failure.rows] == ["2013-05-29"]
    assert absurd["close_factor_not_absurd"].rows[0]["jump_factor"] > 1e10
    text = _summary(report)
    assert "close_not_absurd (jump_robust_z)" in text and "series ACME 2013-05-29" in text
    # the last day absurd (nothing after it to come back): named too
    last = validate(_set({"date": pd.Timestamp(AS_OF)}, "close", 1e12)(batch),
                    schema.PRICES, AS_OF, "acme", history=history)  # fmt: skip
    assert [(f.check, f.rows[0]["date"]) for f in last.failures] == [
        ("close_not_absurd", "2013-05-31"),
        ("close_factor_not_absurd", "2013-05-31"),
    ]


def test_factor_of_200_with_little_history_is_critical() -> None:
    """Four changes are too few for a robust z, but a factor of 200 day on day (up, or down to
    1/200) needs no history: critical, naming the row."""
    wti = _split(PRICES)[0].query("series_id == 'WTI'")
    level = float(wti["close"].iloc[1])
    for value, factor in ((level * 200, 200.0), (level / 200, 200.0)):
        report = validate(_set(WTI_29, "close", value)(wti), schema.PRICES, AS_OF, "short")
        assert [f.check for f in report.failures] == ["close_factor_not_absurd"], report.summary()
        (row,) = report.failures[0].rows
        assert row["date"] == "2013-05-29" and row["jump_factor"] == pytest.approx(factor, 0.05)
    moderate = validate(_set(WTI_29, "close", level * 1.5)(wti), schema.PRICES, AS_OF, "short")
    assert moderate.success and moderate.warnings == [], moderate.summary()
    # a new series whose very first row is off: that row is named, not the normal one after it
    first = {"series_id": "WTI", "date": BATCH_START}
    report = validate(_set(first, "close", level * 200)(wti), schema.PRICES, AS_OF, "short")
    assert [(f.check, [r["date"] for r in f.rows]) for f in report.failures] == [
        ("close_factor_not_absurd", ["2013-05-27"])
    ], report.summary()


def test_absurd_thresholds_are_configurable() -> None:
    batch, history = _split(PRICES)
    jumped = _jump(batch)  # 20%: about 20 robust std devs, a factor of 1.2
    assert validate(jumped, schema.PRICES, AS_OF, "j", history).success
    by_z = validate(
        jumped, schema.PRICES, AS_OF, "j", history, ValidationConfig(absurd_jump_robust_z=10)
    )
    assert [f.check for f in by_z.failures] == ["close_not_absurd"]
    by_factor = validate(
        jumped, schema.PRICES, AS_OF, "j", history, ValidationConfig(absurd_jump_factor=1.1)
    )
    assert [f.check for f in by_factor.failures] == ["close_factor_not_absurd"]


def _revise(history: pd.DataFrame, day: str, factor: float = 1.05) -> pd.DataFrame:
    """The curated SP500 row of ``day`` again, its prices ``factor`` times as high."""
    row = history[(history.series_id == "SP500") & (history.date == pd.Timestamp(day))].copy()
    row[["open", "high", "low", "close"]] *= factor
    return row


def test_revision_is_applied_and_recorded() -> None:
    """A curated day delivered again 5% higher: a warning naming the row, old and new values,
    and a note for the run; the batch passes (late corrections are real)."""
    batch, history = _split(PRICES)
    revised = pd.concat([_revise(history, "2013-05-22"), batch], ignore_index=True)
    report = validate(revised, schema.PRICES, AS_OF, "prices-SP500", history=history)
    assert report.success and [w.check for w in report.warnings] == ["revisions"], report.summary()
    (warning,) = report.warnings
    old = history.set_index(["series_id", "date"]).loc[("SP500", pd.Timestamp("2013-05-22"))]
    assert (warning.severity, warning.risk, warning.unexpected_count) == ("warning", "revisions", 1)
    assert warning.columns == ["open", "high", "low", "close"]
    assert warning.rows == [
        {
            "series_id": "SP500",
            "date": "2013-05-22",
            **{c: f"{old[c]:.10g} -> {old[c] * 1.05:.10g}" for c in warning.columns},
        }
    ]
    curated = len(history[history.series_id == "SP500"])
    assert f"1 of {curated} curated rows revised" in warning.details
    assert report.notes == [
        f"prices-SP500: 1 row revised: 2013-05-22 open {old['open']:.10g} -> "
        f"{old['open'] * 1.05:.10g}, high {old['high']:.10g} -> {old['high'] * 1.05:.10g}, "
        f"low {old['low']:.10g} -> {old['low'] * 1.05:.10g}, "
        f"close {old['close']:.10g} -> {old['close'] * 1.05:.10g}"
    ]
    assert f"series SP500 2013-05-22 open={old['open']:.10g} -> " in report.summary()


def test_identical_rows_again_are_no_revision() -> None:
    """Nightly sources fetch the last days again and files come twice: equal values (nulls
    included, as in WTI's close-only rows, and float noise) are no revision."""
    batch, history = _split(PRICES)
    again = history[history.date >= pd.Timestamp("2013-05-20")].copy()
    again["close"] *= 1 + 1e-9
    report = validate(pd.concat([again, batch]), schema.PRICES, AS_OF, "again", history=history)
    assert report.success and report.warnings == [] and report.notes == [], report.summary()


def test_revising_most_of_the_history_is_refused() -> None:
    """Every curated SP500 day 5% higher: far more than 5% of the rows (and 5 rows), critical,
    naming the first rows; the note says it was refused."""
    batch, history = _split(PRICES)
    sp500 = history[history.series_id == "SP500"].copy()
    sp500[["open", "high", "low", "close"]] *= 1.05
    report = validate(pd.concat([sp500, batch]), schema.PRICES, AS_OF, "all", history=history)
    assert not report.success and [f.check for f in report.failures] == ["revisions"]
    (failure,) = report.failures
    assert failure.unexpected_count == len(sp500)
    assert failure.rows[0]["date"] == "2013-01-01" and len(failure.rows) == 5
    assert f"{len(sp500)} of {len(sp500)} curated rows revised (100.0%)" in failure.details
    text = _summary(report)
    assert "revisions (open, high, low, close)" in text and "series SP500 2013-01-01" in text
    assert "max_revision_share" in text
    assert report.notes[0].startswith(f"all: {len(sp500)} rows revised (refused: over the limit)")
    assert report.notes[0].endswith(f"; and {len(sp500) - 3} more")


def test_revision_limits_are_configurable() -> None:
    batch, history = _split(PRICES)
    days = ["2013-05-20", "2013-05-21", "2013-05-22", "2013-05-23", "2013-05-24"]
    five = pd.concat([*(_revise(history, d) for d in days), batch], ignore_index=True)
    # 5 of ~100 rows: within the 5 rows always allowed
    assert validate(five, schema.PRICES, AS_OF, "five", history).success
    strict = ValidationConfig(revision_rows_always_allowed=2, max_revision_share=0.01)
    report = validate(five, schema.PRICES, AS_OF, "five", history, strict)
    assert [(f.check, f.unexpected_count) for f in report.failures] == [("revisions", 5)]
    loose = ValidationConfig(revision_rows_always_allowed=2, max_revision_share=0.1)
    assert validate(five, schema.PRICES, AS_OF, "five", history, loose).success
