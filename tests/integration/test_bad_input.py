"""Bad input through the whole ingest stage: a clear error or a recorded warning, nothing lost.

Each case drops one file next to a good one already committed, runs the ingest stage (the steps
of flows/ingest.py) and checks: the error names the file or batch, the column and the rows;
curated data is unchanged by a failed batch; the bad file's bytes are kept in raw/ (or, when
refused unread, left in the drop folder and not marked as taken); nothing is duplicated.
HTTP cases (500 then success, timeouts, empty and truncated responses) are in
test_http_sources.py; the validation checks one by one in tests/unit/test_validation_matrix.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline_lib.curate import read_curated
from pipeline_lib.sources import ParseError, SourceError
from pipeline_lib.store.manifest import read_manifest
from pipeline_lib.validation.report import ValidationFailed
from tests.integration.ingest_crash import run_ingest

AS_OF = dt.date(2015, 6, 30)
GOOD_PRICES = "date,open,high,low,close,volume\n" + "".join(
    f"2015-06-{d:02d},{10 + d / 10},{11 + d / 10},{9 + d / 10},{10.5 + d / 10},{1000 + d}\n"
    for d in (1, 2, 3, 4, 5, 8, 9, 10)
)
GOOD_WEATHER = "date,temp_max,temp_min,precipitation,wind_speed\n" + "".join(
    f"2015-06-{d:02d},{20 + d % 3},{10 + d % 2},{d % 4 * 0.5},{3 + d % 5}\n" for d in range(1, 11)
)
HEADER = "date,open,high,low,close,volume\n"


def _setup(tmp_path: Path, max_bytes: int | None = None) -> tuple[Path, Path, Path]:
    prices, weather, data = tmp_path / "prices", tmp_path / "weather", tmp_path / "data"
    prices.mkdir()
    weather.mkdir()
    (prices / "a.csv").write_text(GOOD_PRICES)
    (weather / "a.csv").write_text(GOOD_WEATHER)
    limit = f"\n[ingest]\nmax_file_bytes = {max_bytes}\n" if max_bytes else ""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
data_dir = "{data}"
start_date = "2015-06-01"
{limit}
[weather_source]
kind = "file"
options = {{ path = "{weather}" }}

[[series]]
id = "X"
frequency = "B"
source = {{ kind = "file", options = {{ path = "{prices}" }} }}
weather = {{ name = "here", latitude = 47.6, longitude = -122.3 }}
"""
    )
    run_ingest(str(cfg), dt.date(2015, 6, 10))
    return cfg, prices, weather


def _curated(data: Path) -> dict[str, pd.DataFrame]:
    return {
        "prices": read_curated(str(data), "prices", ["X"]).sort_values("date", ignore_index=True),
        "weather": read_curated(str(data), "weather", ["here"]).sort_values(
            "date", ignore_index=True
        ),
    }


def _raw_hashes(data: Path) -> set[str]:
    return {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (data / "raw").rglob("*")
        if p.is_file() and not p.name.endswith(".meta.json")
    }


def _rows(*lines: str) -> str:
    return HEADER + "".join(f"{line}\n" for line in lines)


GOOD_ROW = "2015-06-11,11,12,10,11.5,1011"

# name -> (data set, file name, bytes, expected error type, regex the message must match)
ERRORS = {
    "wrong delimiter": (
        "prices", "b.csv", b"date;close\n2015-06-11;11\n", ParseError,
        r"'b\.csv'.*missing required column 'date'.*another delimiter than ','",
    ),
    "missing header": (
        "prices", "b.csv", b"2015-06-11,11,12,10,11.5,1011\n2015-06-12,11,12,10,11.5,1\n",
        ParseError, r"'b\.csv'.*missing required column 'date' \(found: 2015-06-11",
    ),
    "truncated last line": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12").encode(), ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*close_not_null.*2015-06-12",
    ),
    "wrong column type": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12,10,12.3O,1012").encode(), ParseError,
        r"'b\.csv'.*column 'close' has non-numeric values at rows 2 .*'12.3O'",
    ),
    "missing column": (
        "prices", "b.csv", b"date,open\n2015-06-11,11\n", ParseError,
        r"'b\.csv'.*missing required column 'close'",
    ),
    "duplicate dates": (
        "prices", "b.csv", _rows(GOOD_ROW, GOOD_ROW).encode(), ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*key_unique.*2015-06-11",
    ),
    "NaN values": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12,10,,1012").encode(),
        ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*close_not_null.*2015-06-12",
    ),
    "NaN spelled out": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12,10,NaN,1012").encode(),
        ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*close_not_null.*2015-06-12",
    ),
    "negative price": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12,10,-3,1012").encode(),
        ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*close_positive.*2015-06-12",
    ),
    "zero price": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12,10,0,1012").encode(),
        ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*close_positive.*2015-06-12",
    ),
    "high below low": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,9,10,9.5,1012").encode(),
        ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*high_ge_low.*2015-06-12",
    ),
    "negative volume": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12,10,11,-5").encode(),
        ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*volume_non_negative.*2015-06-12",
    ),
    "impossible weather": (
        "weather", "b.csv",
        b"date,temp_max,temp_min,precipitation,wind_speed\n2015-06-11,80,15,0,3\n",
        ValidationFailed,
        r"weather-here' from source 'file': b\.csv .*temp_max_physical.*2015-06-11",
    ),
    "negative precipitation": (
        "weather", "b.csv",
        b"date,temp_max,temp_min,precipitation,wind_speed\n2015-06-11,20,15,-1,3\n",
        ValidationFailed,
        r"weather-here' from source 'file': b\.csv .*precipitation_physical.*2015-06-11",
    ),
    "date in the future": (
        "prices", "b.csv", _rows(GOOD_ROW, "2099-01-02,11,12,10,11,1012").encode(),
        ValidationFailed,
        r"prices-X' from source 'file': b\.csv .*date_not_after_as_of.*2099-01-02",
    ),
    "impossible date": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-02-30,11,12,10,11,1012").encode(), ParseError,
        r"'b\.csv'.*column 'date' has unparsable dates at rows 2 .*'2015-02-30'",
    ),
    "non-UTF-8 file": (
        "prices", "b.csv", (HEADER + "2015-06-11,11,12,10,11.5,1011 \u20ac\n").encode("cp1252"),
        ParseError, r"'b\.csv'.*not UTF-8 text: byte 0x80",
    ),
    "empty file": ("prices", "b.csv", b"", ParseError, r"'b\.csv'.*the file is empty"),
    "corrupt parquet": (
        "prices", "b.parquet", b"PAR1 this is not parquet", ParseError,
        r"'b\.parquet'.*not a readable Parquet file",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_file_fails_clearly_and_changes_nothing(tmp_path: Path, case: str) -> None:
    dataset, name, content, error, message = ERRORS[case]
    cfg, prices, weather = _setup(tmp_path)
    data = tmp_path / "data"
    before = _curated(data)
    (prices if dataset == "prices" else weather).joinpath(name).write_bytes(content)

    with pytest.raises(error) as info:
        run_ingest(str(cfg), AS_OF)
    # the message is ours: it names the file or batch, the column or check, and the rows
    assert re.search(message, str(info.value), re.S), str(info.value)

    after = _curated(data)
    for key, df in after.items():
        pd.testing.assert_frame_equal(df, before[key], obj=f"curated {key} after {case}")
    if content:
        assert hashlib.sha256(content).hexdigest() in _raw_hashes(data)  # kept as received
    key = "X" if dataset == "prices" else "here"
    assert not any(url.endswith(name) for url in read_manifest(str(data), dataset, key))
    if error is ValidationFailed:
        assert list((data / "quarantine").rglob("report.json"))


def test_huge_file_is_refused_unread_and_kept_for_later(tmp_path: Path) -> None:
    cfg, prices, _ = _setup(tmp_path, max_bytes=10_000)
    data = tmp_path / "data"
    before = _curated(data)
    raw_before = _raw_hashes(data)
    (prices / "huge.csv").write_text(_rows(*[GOOD_ROW] * 500))
    with pytest.raises(SourceError, match=r"huge\.csv is [\d,]+ bytes, over the limit of 10,000"):
        run_ingest(str(cfg), AS_OF)
    assert _raw_hashes(data) == raw_before
    assert (prices / "huge.csv").exists()  # still there to split or retry with a higher limit
    for key, df in _curated(data).items():
        pd.testing.assert_frame_equal(df, before[key])


def test_out_of_order_dates_and_extra_column_are_taken_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, prices, _ = _setup(tmp_path)
    data = tmp_path / "data"
    (prices / "b.csv").write_text(
        "date,close,open,high,low,volume,comment\n"
        "2015-06-12,11.2,11,12,10,1012,late\n"
        "2015-06-11,11.1,11,12,10,1011,\n"
    )
    run_ingest(str(cfg), AS_OF)
    assert "'b.csv' (series X, source file): columns not in the schema ignored: ['comment']" in (
        caplog.text
    )
    run_ingest(str(cfg), AS_OF)  # a rerun takes nothing twice
    prices_df = _curated(data)["prices"]
    assert prices_df["date"].is_monotonic_increasing
    assert not prices_df.duplicated(["series_id", "date"]).any()
    assert list(prices_df["close"].tail(2)) == [11.1, 11.2]
    assert "comment" not in prices_df.columns
