"""Sources and parsing: bundled sample, file drops, and clear errors on bad files."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import SEATTLE, Location, SeriesConfig, Settings, SourceSpec
from pipeline_lib.sources import (
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


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"date,price\n2024-01-02,1\n", r"missing required column 'close' \(found: date, price\)"),
        (
            b"date,close\n2024-01-02,1\n2024-01-03,abc\n2024-01-04,2\n2024-01-05,--\n",
            r"column 'close' has non-numeric values at rows 2, 4 .*'abc', '--'",
        ),
        (b"date,close\n2024-01-02,1\nyesterday,2\n", r"unparsable dates at rows 2 .*'yesterday'"),
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
    with pytest.raises(ParseError, match="more fields than the header"):
        parse_payload(csv_payload(b"date,close\n2024-01-02,1,5\n"))


def test_parse_empty_date_cell_is_reported() -> None:
    with pytest.raises(ParseError, match=r"unparsable dates at rows 1 .*\(empty\)"):
        parse_payload(csv_payload(b"date,close\n,1\n"))


def test_parse_reports_impossible_dates() -> None:
    with pytest.raises(ParseError, match=r"impossible dates .* rows 2 .*'2999-01-01'"):
        parse_payload(csv_payload(b"date,close\n2024-01-02,1\n2999-01-01,2\n"))


def test_unknown_source_option_is_an_error() -> None:
    settings = Settings(
        series=[{"id": "S", "source": {"kind": "stooq", "options": {"symbl": "x"}}}]
    )
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['symbl'\] for kind 'stooq'"):
        price_source(settings.series[0], settings)
