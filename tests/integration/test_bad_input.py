"""Bad input through the whole ingest stage: a clear error or a recorded warning, nothing lost.

Each case drops one file next to a good one already committed, runs the ingest stage (the steps
of flows/ingest.py) and checks: the error names the file or batch, the column and the rows;
curated data is unchanged by a failed batch; the bad file's bytes are kept in raw/ (or, when
refused unread, left in the drop folder and not marked as taken); nothing is duplicated.
Files a drop does not take at all (symbolic links, fifos) are refused before anything is read.
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

from pipeline_lib.config import load_settings
from pipeline_lib.ingest import gate, landing
from pipeline_lib.ingest.curate import read_curated
from pipeline_lib.ingest.sources import ParseError, SourceError
from pipeline_lib.publishing import artifacts
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


def _redate(text: str, date_format: str | None) -> str:
    """The same CSV with its dates written with ``date_format`` instead of ISO."""
    if not date_format:
        return text
    header, *lines = text.splitlines(keepends=True)
    return header + "".join(
        dt.date.fromisoformat(ln[:10]).strftime(date_format) + ln[10:] for ln in lines
    )


def _setup(
    tmp_path: Path, max_bytes: int | None = None, date_format: str | None = None
) -> tuple[Path, Path, Path]:
    """Folders and a config whose first run commits June 1-10; prices may declare a format."""
    prices, weather, data = tmp_path / "prices", tmp_path / "weather", tmp_path / "data"
    prices.mkdir()
    weather.mkdir()
    (prices / "a.csv").write_text(_redate(GOOD_PRICES, date_format))
    (weather / "a.csv").write_text(GOOD_WEATHER)
    limit = f"\n[ingest]\nmax_file_bytes = {max_bytes}\n" if max_bytes else ""
    declared = f', date_format = "{date_format}"' if date_format else ""
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
source = {{ kind = "file", options = {{ path = "{prices}"{declared} }} }}
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
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12").encode(), ParseError,
        r"'b\.csv'.*wrong number of fields: line 3 has 3, but the header line \(line 1\) has 6; "
        r"every line needs one field per column$",
    ),
    "cut-off last line (issue 15)": (
        "prices", "b.csv", (_rows(GOOD_ROW) + "2015-07-31,44.649,44.728,43.905,44.0").encode(),
        ParseError,
        r"'b\.csv'.*wrong number of fields: line 3 has 5, but the header line \(line 1\) has 6; "
        r".*the file seems cut off: its last line \(line 3\) has no newline$",
    ),
    "extra field": (
        "prices", "b.csv", _rows(GOOD_ROW, "2015-06-12,11,12,10,11.5,1012,7").encode(), ParseError,
        r"'b\.csv'.*wrong number of fields: line 3 has 7, but the header line \(line 1\) has 6",
    ),
    "ambiguous day-first dates": (  # June 1-10 again, other prices: read month first, January
        "prices", "b.csv", _redate(GOOD_PRICES.replace(",10.", ",20."), "%d/%m/%Y").encode(),
        ParseError,
        r"'b\.csv'.*column 'date' has ambiguous dates \(not ISO 8601 YYYY-MM-DD; day first and "
        r"month first give different days\) at rows 1, 2, 3, 4, 5 and 3 more \(1 = first data "
        r"row\): '01/06/2015', .*declare the format in the source's options: "
        r'date_format = "%d/%m/%Y" \(day first\) or "%m/%d/%Y" \(month first\)$',
    ),
    "month-first dates": (
        "prices", "b.csv", _redate(_rows("2015-06-15,11,12,10,11,1015"), "%m/%d/%Y").encode(),
        ParseError,
        r"'b\.csv'.*column 'date' has dates not in ISO 8601 form \(YYYY-MM-DD\) at rows 1 "
        r"\(1 = first data row\): '06/15/2015'; .*date_format = \"%d/%m/%Y\"",
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
    if error is ParseError:
        assert "\n" not in str(info.value)  # one line

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


def test_header_only_file_is_taken_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, prices, _ = _setup(tmp_path)
    data = tmp_path / "data"
    before = _curated(data)
    (prices / "b.csv").write_text(HEADER)
    note = "prices file 'b.csv' (series X, source file): no rows (header only)"
    settings = load_settings(str(cfg))
    [batch] = [
        landing.ingest_source(settings, s, AS_OF)
        for s in landing.sources_for(settings)
        if s.dataset == "prices"
    ]
    assert batch.notes == [note] and batch.data.empty
    [report] = gate.check_batches(str(data), [batch], AS_OF)  # the run's details and summary
    assert report.notes == [note] and f"- {note}" in artifacts.validation_markdown([report])
    run_ingest(str(cfg), AS_OF)
    assert note in caplog.text
    for key, df in _curated(data).items():
        pd.testing.assert_frame_equal(df, before[key])


@pytest.mark.parametrize("inside", [False, True], ids=["to-outside", "to-inside"])
def test_symlink_in_drop_folder_is_refused_unread(tmp_path: Path, inside: bool) -> None:
    cfg, prices, _ = _setup(tmp_path)
    data = tmp_path / "data"
    before, raw_before = _curated(data), _raw_hashes(data)
    secret = tmp_path / "passwd"  # stands in for /etc/passwd
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    target = prices / "a.csv" if inside else secret
    (prices / "b.csv").symlink_to(target)
    pattern = (
        r"prices file drop for 'X': file drops take regular files inside the drop folder only; "
        rf".*b\.csv is a symbolic link to {re.escape(str(target))} \(refused unread"
    )
    with pytest.raises(SourceError, match=pattern) as info:
        run_ingest(str(cfg), AS_OF)
    assert "\n" not in str(info.value)
    assert _raw_hashes(data) == raw_before  # nothing landed in the append-only raw/
    assert not any(url.endswith("b.csv") for url in read_manifest(str(data), "prices", "X"))
    for key, df in _curated(data).items():
        pd.testing.assert_frame_equal(df, before[key])


def test_declared_day_first_date_format_reads_like_iso(tmp_path: Path) -> None:
    late = _rows(GOOD_ROW, "2015-06-12,11,12,10,11.6,1012")
    curated = {}
    for name, date_format in (("iso", None), ("declared", "%d/%m/%Y")):
        (tmp_path / name).mkdir()
        cfg, prices, _ = _setup(tmp_path / name, date_format=date_format)
        (prices / "b.csv").write_text(_redate(late, date_format))
        run_ingest(str(cfg), AS_OF)
        curated[name] = _curated(tmp_path / name / "data")["prices"]
    pd.testing.assert_frame_equal(curated["declared"], curated["iso"])
    assert len(curated["iso"]) == 10 and curated["iso"]["date"].iloc[-1] == pd.Timestamp(
        "2015-06-12"
    )
    # declared, every value must match: an ISO file in that folder is refused, rows named
    (prices / "c.csv").write_text(_rows("2015-06-15,11,12,10,11.7,1015"))
    pattern = (
        r"'c\.csv'.*column 'date' has dates that do not match the source's date_format "
        r"\"%d/%m/%Y\" at rows 1 \(1 = first data row\): '2015-06-15'"
    )
    with pytest.raises(ParseError, match=pattern):
        run_ingest(str(cfg), dt.date(2015, 6, 30))
