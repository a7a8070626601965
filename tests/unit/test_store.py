"""Store: atomic writes, Hive-partitioned upserts and reads, raw landing, watermarks."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.store import (
    atomic_write_bytes,
    land_raw,
    read_dataset,
    upsert_partitions,
    watermarks,
    with_year,
)
from pipeline_lib.store import fs as store_fs
from pipeline_lib.store import parquet as store_parquet
from pipeline_lib.store.raw import CSV, Payload

T0 = dt.datetime(2024, 5, 1, 2, 3, 4, 567890, tzinfo=dt.UTC)


def prices(series: str, days: list[str], close: float) -> pd.DataFrame:
    n = len(days)
    return pd.DataFrame(
        {
            "series_id": [series] * n,
            "date": pd.to_datetime(days).astype("datetime64[ns]"),
            "open": [close] * n,
            "high": [close + 1] * n,
            "low": [close - 1] * n,
            "close": [close + i for i in range(n)],
            "volume": [float("nan")] * n,
        }
    )


def upsert(df: pd.DataFrame, url: str) -> list[str]:
    return upsert_partitions(with_year(df), url, schema.PRICE_KEY, ["series_id", "year"])


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_atomic_write_replaces_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(str(target), b"one")
    atomic_write_bytes(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert all_files(tmp_path) == [os.path.join("sub", "a.bin")]


def test_atomic_write_crash_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(str(target), b"old")

    def crash(*args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(store_fs, "_move", crash)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_bytes(str(target), b"new and half-written")
    assert target.read_bytes() == b"old"
    assert all_files(tmp_path) == ["a.bin"]


def test_atomic_write_on_memory_filesystem() -> None:
    url = "memory://atomic-test/x/y.txt"
    atomic_write_bytes(url, b"hello")
    fs, path = store_fs.filesystem(url)
    assert fs.cat_file(path) == b"hello"
    assert [os.path.basename(p) for p in fs.ls("/atomic-test/x", detail=False)] == ["y.txt"]


def test_upsert_twice_replaces_rows_without_duplicates(tmp_path: Path) -> None:
    url = str(tmp_path / "prices")
    first = prices("SP500", ["2013-12-30", "2013-12-31", "2014-01-02"], 100.0)
    written = upsert(first, url)
    assert sorted(os.path.relpath(w, url) for w in written) == [
        os.path.join("series_id=SP500", "year=2013"),
        os.path.join("series_id=SP500", "year=2014"),
    ]
    second = prices("SP500", ["2013-12-31", "2014-01-03"], 200.0)
    upsert(second, url)
    out = read_dataset(url, schema.PRICE_COLUMNS)
    assert list(out["date"].dt.strftime("%Y-%m-%d")) == [
        "2013-12-30", "2013-12-31", "2014-01-02", "2014-01-03"
    ]  # fmt: skip
    assert list(out["close"]) == [100.0, 200.0, 102.0, 201.0]
    assert all_files(tmp_path / "prices") == [
        os.path.join("series_id=SP500", "year=2013", "part-0.parquet"),
        os.path.join("series_id=SP500", "year=2014", "part-0.parquet"),
    ]


def test_upsert_does_not_mutate_input(tmp_path: Path) -> None:
    df = with_year(prices("SP500", ["2013-01-02"], 1.0))
    before = df.copy()
    upsert_partitions(df, str(tmp_path / "p"), schema.PRICE_KEY, ["series_id", "year"])
    pd.testing.assert_frame_equal(df, before)


def test_read_types_filters_and_numeric_looking_ids(tmp_path: Path) -> None:
    url = str(tmp_path / "prices")
    upsert(prices("0005", ["2013-01-02", "2013-01-03"], 5.0), url)
    upsert(prices("SP500", ["2013-01-02", "2014-06-02"], 9.0), url)
    out = read_dataset(url, schema.PRICE_COLUMNS, filters={"series_id": ["0005"]})
    assert list(out.columns) == schema.PRICE_COLUMNS
    assert list(out["series_id"]) == ["0005", "0005"]
    assert out["date"].dtype == "datetime64[ns]"
    assert out["close"].dtype == "float64" and out["volume"].isna().all()
    ranged = read_dataset(url, ["series_id", "date"], date_from=dt.date(2013, 1, 3),
                          date_to=dt.date(2014, 1, 1))  # fmt: skip
    assert sorted(map(tuple, ranged.astype(str).values)) == [("0005", "2013-01-03")]
    everything = read_dataset(url)
    assert "year" not in everything.columns and len(everything) == 4


def test_read_missing_dataset_is_empty_with_columns(tmp_path: Path) -> None:
    out = read_dataset(str(tmp_path / "nope"), schema.PRICE_COLUMNS)
    assert out.empty and list(out.columns) == schema.PRICE_COLUMNS


def test_read_ignores_hidden_temp_files(tmp_path: Path) -> None:
    url = tmp_path / "prices"
    upsert(prices("SP500", ["2013-01-02"], 1.0), str(url))
    (url / "series_id=SP500" / "year=2013" / ".part-0.parquet.abc.tmp").write_bytes(b"junk")
    assert len(read_dataset(str(url), schema.PRICE_COLUMNS)) == 1


def test_watermarks_are_newest_date_per_key(tmp_path: Path) -> None:
    url = str(tmp_path / "prices")
    assert watermarks(url, "series_id") == {}
    upsert(prices("SP500", ["2013-01-02", "2014-02-03"], 1.0), url)
    upsert(prices("WTI", ["2013-05-06"], 1.0), url)
    assert watermarks(url, "series_id") == {
        "SP500": dt.date(2014, 2, 3),
        "WTI": dt.date(2013, 5, 6),
    }


def payload(content: bytes, fetched_at: dt.datetime = T0) -> Payload:
    return Payload(
        source="sample", dataset="prices", key="SP500",
        request={"start": "2013-01-01", "end": "2013-01-31"}, fetched_at=fetched_at,
        content=content, media_type=CSV, name="prices_SP500.csv",
    )  # fmt: skip


def test_land_raw_keeps_bytes_and_metadata(tmp_path: Path) -> None:
    content = b"date,close\r\n2013-01-02,1.5\r\n"
    url = land_raw(str(tmp_path), payload(content))
    assert Path(url).read_bytes() == content
    rel = os.path.relpath(url, tmp_path)
    assert rel.startswith(os.path.join("raw", "dataset=prices", "source=sample", "key=SP500", ""))
    assert os.path.basename(url).startswith("20240501T020304567890Z-") and url.endswith(".csv")
    meta = json.loads(Path(url + ".meta.json").read_text())
    assert meta["request"] == {"start": "2013-01-01", "end": "2013-01-31"}
    assert meta["size"] == len(content) and meta["name"] == "prices_SP500.csv"
    assert meta["fetched_at"] == "2024-05-01T02:03:04.567890+00:00"


def test_land_raw_is_append_only_and_idempotent(tmp_path: Path) -> None:
    a = land_raw(str(tmp_path), payload(b"date,close\n2013-01-02,1\n"))
    again = land_raw(str(tmp_path), payload(b"date,close\n2013-01-02,1\n"))
    b = land_raw(str(tmp_path), payload(b"date,close\n2013-01-02,2\n"))
    c = land_raw(str(tmp_path), payload(b"date,close\n2013-01-02,1\n", T0 + dt.timedelta(days=1)))
    assert again == a
    assert len({a, b, c}) == 3
    data_files = [f for f in all_files(tmp_path) if not f.endswith(".meta.json")]
    assert len(data_files) == 3 and len(all_files(tmp_path)) == 6
    assert Path(a).read_bytes() == b"date,close\n2013-01-02,1\n"


def test_reading_a_few_files_at_a_time_gives_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "prices")
    for k, series in enumerate(["A", "B", "C"]):
        upsert(prices(series, ["2012-05-01", "2013-01-02", "2014-06-02", "2015-03-03"], k), url)
    whole = read_dataset(url, schema.PRICE_COLUMNS, date_from=dt.date(2013, 1, 1))
    monkeypatch.setattr(store_parquet, "FILES_PER_READ", 2)  # 9 files read: 2, 2, 2, 2, 1
    pieces = read_dataset(url, schema.PRICE_COLUMNS, date_from=dt.date(2013, 1, 1))
    pd.testing.assert_frame_equal(pieces, whole)
    assert len(whole) == 9 and list(whole["series_id"].unique()) == ["A", "B", "C"]
