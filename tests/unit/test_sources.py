"""Sources and parsing: bundled sample, file drops, and clear errors on bad files."""

from __future__ import annotations

import datetime as dt
import os
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import SEATTLE, Location, SeriesConfig, Settings, SourceSpec
from pipeline_lib.ingest.sources import (
    CSV,
    FileDropSource,
    ParseError,
    Payload,
    SampleSource,
    Source,
    SourceError,
    filter_dates,
    parse_payload,
    price_source,
    weather_source,
)

D = dt.date


def csv_payload(content: bytes, dataset: str = "prices", name: str = "x.csv") -> Payload:
    return Payload(
        source="file", dataset=dataset, key="SP500", request={"path": name},
        fetched_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), content=content,
        media_type=CSV, name=name,
    )  # fmt: skip


def test_sample_fetch_returns_exact_rows_verbatim() -> None:
    src = SampleSource("prices", "SP500", "SP500")
    [p] = src.fetch(D(2013, 1, 1), D(2013, 1, 4))
    bundled = (resources.files("pipeline_lib") / "sample_data" / "prices_SP500.csv").read_bytes()
    lines = p.content.splitlines(keepends=True)
    assert lines[0] == b"date,open,high,low,close,volume\n"
    assert [ln[:10] for ln in lines[1:]] == [b"2013-01-02", b"2013-01-03", b"2013-01-04"]
    assert all(ln in bundled for ln in lines[1:])
    assert p.fetched_at.tzinfo is not None and p.request["start"] == "2013-01-01"
    df = parse_payload(p)
    assert list(df.columns) == schema.PRICE_COLUMNS and len(df) == 3
    assert df["date"].dtype == "datetime64[ns]" and set(df["series_id"]) == {"SP500"}
    assert df["close"].iloc[0] == pytest.approx(1462.420044)


def test_sample_fetch_outside_range_is_empty() -> None:
    assert SampleSource("prices", "SP500").fetch(D(2030, 1, 1), D(2030, 2, 1)) == []


def test_wti_sample_is_close_only() -> None:
    [p] = SampleSource("prices", "WTI").fetch(D(2014, 1, 1), D(2014, 1, 31))
    df = parse_payload(p)
    assert len(df) > 15 and df["close"].notna().all()
    assert df[["open", "high", "low", "volume"]].isna().all().all()
    assert (df[["open", "high", "low", "volume"]].dtypes == "float64").all()


def test_sample_weather_derives_temp_mean_and_drops_label() -> None:
    [p] = weather_source(Settings(), SEATTLE).fetch(D(2012, 1, 1), D(2012, 1, 2))
    df = parse_payload(p)
    assert list(df.columns) == schema.WEATHER_COLUMNS
    assert list(df["location"]) == ["seattle", "seattle"]
    assert list(df["temp_mean"]) == [pytest.approx(8.9), pytest.approx(6.7)]


def test_unknown_sample_lists_available() -> None:
    with pytest.raises(SourceError, match="available: MSFT, NASDAQ, SP500, WTI"):
        SampleSource("prices", "AAPL")
    with pytest.raises(SourceError, match="available: seattle"):
        weather_source(Settings(), Location(name="oslo", latitude=59.9, longitude=10.7))


def test_factories_choose_by_kind(tmp_path: Path) -> None:
    sample = price_source(SeriesConfig(id="WTI"), Settings())
    assert isinstance(sample, SampleSource) and sample.symbol == "WTI"
    spec = SourceSpec(kind="file", options={"path": str(tmp_path), "columns": {"Price": "close"}})
    drop = price_source(SeriesConfig(id="GAS", source=spec), Settings())
    assert isinstance(drop, FileDropSource) and drop.columns == {"Price": "close"}
    assert isinstance(drop, Source) and drop.key == "GAS" and drop.dataset == "prices"
    with pytest.raises(SourceError, match="options.path"):
        price_source(SeriesConfig(id="GAS", source=SourceSpec(kind="file")), Settings())


def test_file_drop_csv_and_parquet_folder(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_bytes(b"Date,Close,Volume\n2024-01-03,10.5,100\n")
    pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]), "close": [9.0]}).to_parquet(
        tmp_path / "a.parquet"
    )
    (tmp_path / "notes.txt").write_text("ignored")
    payloads = FileDropSource("prices", "GAS", str(tmp_path)).fetch(D(2024, 1, 1), D(2024, 1, 31))
    assert [p.name for p in payloads] == ["a.parquet", "b.csv"]
    assert payloads[1].content == (tmp_path / "b.csv").read_bytes()
    assert payloads[0].request["path"] == str(tmp_path)
    df = pd.concat([parse_payload(p) for p in payloads], ignore_index=True)
    assert list(df["close"]) == [9.0, 10.5]
    assert list(df["date"].dt.day) == [2, 3] and df["date"].dtype == "datetime64[ns]"
    assert df["volume"].tolist()[1] == 100.0 and pd.isna(df["volume"].iloc[0])


def test_file_drop_single_file_with_column_mapping(tmp_path: Path) -> None:
    f = tmp_path / "gas.csv"
    f.write_bytes(b"Day,Price\n2024-01-02,3.1\n2024-01-03,3.2\n2024-02-01,9.9\n")
    src = FileDropSource("prices", "GAS", str(f), columns={"day": "date", "PRICE": "close"})
    [p] = src.fetch(D(2024, 1, 1), D(2024, 1, 31))
    df = filter_dates(parse_payload(p), D(2024, 1, 1), D(2024, 1, 31))
    assert list(df["close"]) == [3.1, 3.2] and set(df["series_id"]) == {"GAS"}


def test_file_drop_missing_path_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    with pytest.raises(SourceError, match="path not found: .*nowhere"):
        FileDropSource("prices", "GAS", missing).fetch(D(2024, 1, 1), D(2024, 1, 2))


def test_parse_keeps_duplicates_and_business_rule_violations() -> None:
    body = b"date,close,high,low\n2024-01-02,-5,1,2\n2024-01-02,-5,1,2\n"
    df = parse_payload(csv_payload(body))
    assert len(df) == 2 and (df["close"] < 0).all() and (df["high"] < df["low"]).all()


def test_filter_dates_does_not_mutate() -> None:
    df = parse_payload(csv_payload(b"date,close\n2024-01-01,1\n2024-01-05,2\n"))
    before = df.copy()
    out = filter_dates(df, D(2024, 1, 2), D(2024, 1, 5))
    assert list(out["close"]) == [2.0]
    pd.testing.assert_frame_equal(df, before)


def test_numbers_as_written_blanks_as_missing() -> None:
    """Numbers in any form pandas reads (spaces around, exponent, sign, infinity) parse alike
    whether every value of the column is a number or a blank sends it down the checked path."""
    written = [" 1.5 ", "1e3", "+2", "-inf", "0.25"]
    numbers = [1.5, 1000.0, 2.0, float("-inf"), 0.25]
    days = [f"2024-01-0{i}" for i in range(1, 8)]
    for values, expected in ((written, numbers), ([*written, "", "  "], [*numbers, None, None])):
        body = "date,close\n" + "".join(f"{d},{v}\n" for d, v in zip(days, values, strict=False))
        df = parse_payload(csv_payload(body.encode()))
        assert df["close"].dtype == "float64"
        got = [None if pd.isna(x) else x for x in df["close"]]
        assert got == expected


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"date,price\n2024-01-02,1\n", r"missing required column 'close' \(found: date, price\)"),
        (
            b"date,close\n2024-01-02,1\n2024-01-03,abc\n2024-01-04,2\n2024-01-05,--\n",
            r"column 'close' has non-numeric values at rows 2, 4 .*'abc', '--'",
        ),
        (
            b"date,close\n2024-01-02,1\nyesterday,2\n",
            r"not in ISO 8601 form \(YYYY-MM-DD\) at rows 2 .*'yesterday'.*date_format",
        ),
        (b"", r"the file is empty"),
        (b"date,close\n2024-01-02,caf\xe9\n", r"not UTF-8 text: byte 0xe9"),
        (b"date;close\n2024-01-02;1\n", r"missing required column 'date' .*delimiter"),
    ],
    ids=["missing-column", "non-numeric", "bad-date", "empty", "not-utf8", "semicolons"],
)
def test_parse_errors_are_clear(content: bytes, pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern) as info:
        parse_payload(csv_payload(content))
    assert "prices file 'x.csv' (series SP500" in str(info.value)


def test_parse_error_for_missing_weather_column() -> None:
    body = b"date,temp_max,temp_min,precipitation\n2024-01-02,1,0,0\n"
    with pytest.raises(ParseError, match="weather file .*location SP500.*'wind_speed'"):
        parse_payload(csv_payload(body, dataset="weather"))


def test_parquet_with_saved_index_and_time_zone(tmp_path: Path) -> None:
    stamps = pd.to_datetime(["2024-01-02 00:00+01:00", "2024-01-03 00:00+01:00"])
    frame = pd.DataFrame({"Close": [1.0, 2.0]}, index=pd.Index(stamps, name="Date"))
    frame.to_parquet(tmp_path / "p.parquet")
    src = FileDropSource("prices", "GAS", str(tmp_path / "p.parquet"))
    [p] = src.fetch(D(2024, 1, 1), D(2024, 1, 9))
    df = parse_payload(p)
    assert list(df["date"].dt.strftime("%Y-%m-%d")) == ["2024-01-02", "2024-01-03"]
    assert df["date"].dtype == "datetime64[ns]" and list(df["close"]) == [1.0, 2.0]


def test_parse_rejects_rows_longer_than_header() -> None:
    pattern = r"wrong number of fields: line 2 has 3, but the header line \(line 1\) has 2"
    with pytest.raises(ParseError, match=pattern):
        parse_payload(csv_payload(b"date,close\n2024-01-02,1,5\n"))


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (
            b"date,close,volume\n2024-01-02,1,5\n2024-01-03,1\n",
            r"line 3 has 2, but the header line \(line 1\) has 3; every line needs one field per "
            r"column$",
        ),
        (
            b"date,close,volume\n2024-01-02,1,5\n2024-01-03,1",
            r"line 3 has 2, .*the file seems cut off: its last line \(line 3\) has no newline$",
        ),
        (
            b"date,close,volume\n\n2024-01-02,1\n2024-01-03,1,5,6\n" + b"2024-01-04,1\n" * 5,
            r"line 3 has 2, line 4 has 4, line 5 has 2, line 6 has 2, line 7 has 2 and 2 more "
            r"lines, but the header line \(line 1\) has 3",
        ),
        (
            b'date,close,volume\n2024-01-02,"multi\nline",5\n2024-01-03,1\n',
            r"line 4 has 2, but the header line \(line 1\) has 3",  # a record spans lines 2-3
        ),
    ],
    ids=["short-line", "cut-off-last-line", "many-lines", "after-quoted-newline"],
)
def test_parse_names_lines_with_another_field_count(content: bytes, pattern: str) -> None:
    with pytest.raises(ParseError, match=pattern) as info:
        parse_payload(csv_payload(content))
    assert "prices file 'x.csv'" in str(info.value) and "\n" not in str(info.value)


def test_parse_field_count_allows_quotes_bom_blank_lines_and_no_final_newline() -> None:
    body = '\ufeffdate,close,volume\r\n\r\n2024-01-02, "1",5\r\n"2024-01-03","2",  \r\n'
    df = parse_payload(csv_payload((body + "2024-01-04,3,7").encode()))
    assert list(df["close"]) == [1.0, 2.0, 3.0]
    assert df["volume"].tolist()[::2] == [5.0, 7.0] and pd.isna(df["volume"].iloc[1])


def test_parse_header_only_file_has_no_rows_and_says_so() -> None:
    df = parse_payload(csv_payload(b"date,close\n"))
    assert df.empty and list(df.columns) == schema.PRICE_COLUMNS
    assert df.attrs["no_rows"] == "header only"
    assert "no_rows" not in parse_payload(csv_payload(b"date,close\n2024-01-02,1\n")).attrs


def test_parse_empty_date_cell_is_reported() -> None:
    with pytest.raises(ParseError, match=r"empty dates at rows 1 .*\(empty\)"):
        parse_payload(csv_payload(b"date,close\n,1\n"))


def test_parse_iso_dates_with_times_and_offsets_keep_the_day_as_written() -> None:
    body = (
        b"date,close\n2015-06-11T00:00:00-04:00,1\n2015-06-12T23:30:00+05:30,2\n"
        b"2015-06-13 10:00,3\n2015-06-14T10:00:00.5Z,4\n 2015-06-15 ,5\n"
    )
    df = parse_payload(csv_payload(body))
    assert list(df["date"].dt.day) == [11, 12, 13, 14, 15]
    assert df["date"].dtype == "datetime64[ns]" and (df["date"] == df["date"].dt.normalize()).all()


@pytest.mark.parametrize(
    ("dates", "pattern"),
    [
        (
            ["01/06/2015", "15/06/2015", "02/06/2015"],
            r"column 'date' has ambiguous dates \(not ISO 8601 YYYY-MM-DD; day first and month "
            r"first give different days\) at rows 1, 3 \(1 = first data row\): '01/06/2015', "
            r"'02/06/2015'; declare the format in the source's options: "
            r'date_format = "%d/%m/%Y" \(day first\) or "%m/%d/%Y" \(month first\)$',
        ),
        (["01.02.16"], r"ambiguous dates .*'01\.02\.16'.*\"%d\.%m\.%y\" .* \"%m\.%d\.%y\""),
        (
            ["06/15/2015", "06/16/2015"],
            r"column 'date' has dates not in ISO 8601 form \(YYYY-MM-DD\) at rows 1, 2 .*"
            r"'06/15/2015', '06/16/2015'; write them as YYYY-MM-DD or declare the format in the "
            r'source\'s options, e.g. date_format = "%d/%m/%Y" \(day first\)',
        ),
        (["05/05/2015"], r"dates not in ISO 8601 form .* rows 1 .*'05/05/2015'"),  # same either way
        (["20150611"], r"dates not in ISO 8601 form .* rows 1 .*'20150611'"),
        (["2015-6-1"], r"dates not in ISO 8601 form .* rows 1 .*'2015-6-1'"),
        (["2015-06-11T25:00"], r"unparsable dates at rows 1 .*'2015-06-11T25:00'.*no real day"),
    ],
    ids=["day-first", "dotted", "month-first", "same-both-ways", "basic", "unpadded", "bad-hour"],
)
def test_parse_refuses_dates_that_are_not_iso(dates: list[str], pattern: str) -> None:
    body = "date,close\n" + "".join(f"{d},1\n" for d in dates)
    with pytest.raises(ParseError, match=pattern) as info:
        parse_payload(csv_payload(body.encode()))
    assert "prices file 'x.csv' (series SP500" in str(info.value) and "\n" not in str(info.value)


def test_parse_declared_date_format_reads_every_value_with_it() -> None:
    body = b"date,close\n01/06/2015,1\n13/06/2015,2\n"
    payload = csv_payload(body)
    declared = Payload(**{**vars(payload), "request": {"date_format": "%d/%m/%Y"}})
    want = pd.to_datetime(["2015-06-01", "2015-06-13"])
    assert list(parse_payload(declared)["date"]) == list(want)  # replayed from the request
    assert list(parse_payload(payload, date_format="%d/%m/%Y")["date"]) == list(want)
    us = parse_payload(csv_payload(b"date,close\n06/01/2015,1\n"), date_format="%m/%d/%Y")
    assert list(us["date"]) == [pd.Timestamp("2015-06-01")]
    aware = csv_payload(b"date,close\n11.06.2015 23:00 -0400,1\n")
    df = parse_payload(aware, date_format="%d.%m.%Y %H:%M %z")
    assert list(df["date"]) == [pd.Timestamp("2015-06-11")]  # the day as written


def test_parse_declared_date_format_names_rows_that_do_not_match() -> None:
    body = b"date,close\n01/06/2015,1\n2015-06-02,2\n32/06/2015,3\n"
    pattern = (
        r"column 'date' has dates that do not match the source's date_format \"%d/%m/%Y\" at "
        r"rows 2, 3 \(1 = first data row\): '2015-06-02', '32/06/2015'"
    )
    with pytest.raises(ParseError, match=pattern):
        parse_payload(csv_payload(body), date_format="%d/%m/%Y")


def test_parse_reports_impossible_dates() -> None:
    with pytest.raises(ParseError, match=r"impossible dates .* rows 2 .*'2999-01-01'"):
        parse_payload(csv_payload(b"date,close\n2024-01-02,1\n2999-01-01,2\n"))


def test_unknown_source_option_is_an_error() -> None:
    settings = Settings(
        series=[{"id": "S", "source": {"kind": "stooq", "options": {"symbl": "x"}}}]
    )
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['symbl'\] for kind 'stooq'"):
        price_source(settings.series[0], settings)


def test_file_source_date_format_option_is_checked_and_recorded(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"date,close\n01/06/2015,1\n")
    options = {"path": str(tmp_path), "date_format": "%d/%m/%Y"}
    settings = Settings(series=[{"id": "S", "source": {"kind": "file", "options": options}}])
    src = price_source(settings.series[0], settings)
    assert isinstance(src, FileDropSource) and src.date_format == "%d/%m/%Y"
    [p] = src.fetch(D(2015, 1, 1), D(2015, 12, 31))
    assert p.request["date_format"] == "%d/%m/%Y"
    assert list(parse_payload(p)["date"]) == [pd.Timestamp("2015-06-01")]
    weather = Settings(weather_source={"kind": "file", "options": options})
    assert weather_source(weather, SEATTLE).date_format == "%d/%m/%Y"
    bad = Settings(
        series=[
            {"id": "S", "source": {"kind": "file", "options": {**options, "date_format": "%Q"}}}
        ]
    )
    with pytest.raises(SourceError, match=r"options.date_format '%Q' is not a strftime pattern"):
        price_source(bad.series[0], bad)
    sample = Settings(series=[{"id": "S", "source": {"kind": "sample", "options": options}}])
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['date_format', 'path'\]"):
        price_source(sample.series[0], sample)


GOOD = b"date,close\n2024-01-02,1\n"


def test_file_drop_refuses_links_before_reading(tmp_path: Path) -> None:
    drop, outside = tmp_path / "drop", tmp_path / "passwd.csv"
    drop.mkdir()
    outside.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    (drop / "a.csv").write_bytes(GOOD)
    (drop / "b.csv").symlink_to(outside)
    src = FileDropSource("prices", "GAS", str(drop))
    rule = r"file drops take regular files inside the drop folder only"
    with pytest.raises(SourceError, match=rf"{rule}; .*b\.csv is a symbolic link to .*passwd\.csv"):
        src.fetch(D(2024, 1, 1), D(2024, 1, 31))
    (drop / "b.csv").unlink()
    (drop / "b.csv").symlink_to(drop / "a.csv")  # inside the folder, still a link
    with pytest.raises(SourceError, match=rf"{rule}; .*b\.csv is a symbolic link to .*a\.csv"):
        src.fetch(D(2024, 1, 1), D(2024, 1, 31))
    (drop / "b.csv").unlink()
    (drop / "notes.txt").symlink_to(outside)  # not a file the drop takes: never read
    assert [p.name for p in src.fetch(D(2024, 1, 1), D(2024, 1, 31))] == ["a.csv"]


def test_file_drop_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(GOOD)
    os.mkfifo(tmp_path / "b.csv")  # opening it for reading would wait for a writer
    with pytest.raises(SourceError, match=r"b\.csv is not a regular file but a fifo"):
        FileDropSource("prices", "GAS", str(tmp_path)).fetch(D(2024, 1, 1), D(2024, 1, 31))
    with pytest.raises(SourceError, match=r"b\.csv is not a regular file"):
        FileDropSource("prices", "GAS", str(tmp_path / "b.csv")).fetch(D(2024, 1, 1), D(2024, 2, 1))


def test_file_drop_path_may_be_a_link_to_a_folder_or_file(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.csv").write_bytes(GOOD)
    (real / "sub.csv").mkdir()  # a folder with a data file's name is skipped, as before
    (tmp_path / "drop").symlink_to(real)
    (tmp_path / "one.csv").symlink_to(real / "a.csv")
    for path, name in ((tmp_path / "drop", "a.csv"), (tmp_path / "one.csv", "one.csv")):
        [p] = FileDropSource("prices", "GAS", str(path)).fetch(D(2024, 1, 1), D(2024, 1, 31))
        assert p.name == name and p.content == GOOD
