"""Ingest: watermarks, raw landing, and which rows a point-in-time run keeps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pipeline_lib.config import load_settings
from pipeline_lib.ingest.batch import fetch_window
from pipeline_lib.ingest.curate import commit_batches, read_curated
from pipeline_lib.ingest.landing import ingest_source, sources_for


def test_fetch_window() -> None:
    d = dt.date
    start = d(2015, 1, 1)
    assert fetch_window(None, start, d(2015, 2, 1)) == (start, d(2015, 2, 1))
    assert fetch_window(d(2015, 1, 31), start, d(2015, 2, 1)) == (d(2015, 2, 1), d(2015, 2, 1))
    # late revisions: three days before the watermark are asked again
    assert fetch_window(d(2015, 1, 31), start, d(2015, 2, 1), 3) == (d(2015, 1, 29), d(2015, 2, 1))
    assert fetch_window(d(2015, 1, 2), start, d(2015, 1, 5), 9) == (start, d(2015, 1, 5))
    # a rerun of a date already ingested fetches nothing, look-back or not
    assert fetch_window(d(2015, 2, 1), start, d(2015, 2, 1), 3) is None
    # a backfill asks for exactly its range...
    assert fetch_window(d(2015, 3, 1), start, d(2015, 2, 10), 3, d(2015, 2, 5)) == (
        d(2015, 2, 5),
        d(2015, 2, 10),
    )
    # ...widened back when curated data stops before it, so no hole is left
    assert fetch_window(d(2015, 1, 20), start, d(2015, 2, 10), 3, d(2015, 2, 5)) == (
        d(2015, 1, 21),
        d(2015, 2, 10),
    )


def test_second_run_takes_only_new_dates(tmp_path: Path) -> None:
    s = load_settings(
        data_dir=str(tmp_path),
        start_date="2015-06-01",
        series=[{"id": "SP500", "source": {"kind": "sample"}}],
    )
    (source,) = sources_for(s)
    first = ingest_source(s, source, dt.date(2015, 6, 30))
    assert first.data["date"].min() >= pd.Timestamp("2015-06-01")
    assert first.data["date"].max() == pd.Timestamp("2015-06-30")
    commit_batches(s.data_dir, [first])
    again = ingest_source(s, source, dt.date(2015, 6, 30))
    assert again.data.empty and again.raw_paths == []
    nxt = ingest_source(s, source, dt.date(2015, 7, 2))
    assert nxt.window == (dt.date(2015, 6, 28), dt.date(2015, 7, 2))  # 3 days of revisions
    assert [d.isoformat() for d in nxt.data["date"].dt.date] == [
        "2015-06-29",
        "2015-06-30",
        "2015-07-01",
        "2015-07-02",
    ]
    commit_batches(s.data_dir, [nxt, nxt])  # committing twice never duplicates
    curated = read_curated(s.data_dir, "prices", ["SP500"])
    assert not curated.duplicated(["series_id", "date"]).any()
    assert len(list((tmp_path / "raw").rglob("*.csv"))) == 2  # every fetch kept, as fetched


def test_later_rows_wait_and_impossible_rows_stay(tmp_path: Path) -> None:
    drop = tmp_path / "drop.csv"
    drop.write_text("date,close\n2015-06-29,10\n2015-06-30,11\n2015-07-01,12\n2031-01-01,13\n")
    s = load_settings(
        data_dir=str(tmp_path / "d"),
        start_date="2015-06-01",
        series=[{"id": "X", "source": {"kind": "file", "options": {"path": str(drop)}}}],
    )
    (source,) = sources_for(s)
    batch = ingest_source(s, source, dt.date(2015, 6, 30), today=dt.date(2015, 7, 5))
    # 1 July is later data for a run as of 30 June; 2031 is in the future: validation's job
    assert [d.isoformat() for d in batch.data["date"].dt.date] == [
        "2015-06-29",
        "2015-06-30",
        "2031-01-01",
    ]


def _drop_settings(tmp_path: Path, folder: Path, **extra: object):
    return load_settings(
        data_dir=str(tmp_path / "d"),
        start_date="2015-06-01",
        series=[{"id": "X", "source": {"kind": "file", "options": {"path": str(folder)}}}],
        **extra,
    )


def _ingest_and_commit(s, as_of: dt.date):
    (source,) = sources_for(s)
    batch = ingest_source(s, source, as_of, today=dt.date(2015, 12, 31))
    commit_batches(s.data_dir, [batch])
    return batch


def _files_taken(batch) -> list[str]:
    return [Path(url).name for url, _ in batch.files]


def test_file_drop_takes_each_new_file_once(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.csv").write_text("date,close\n2015-06-01,10\n2015-06-02,11\n2015-06-03,12\n")
    s = _drop_settings(tmp_path, drop)
    assert _files_taken(_ingest_and_commit(s, dt.date(2015, 6, 30))) == ["a.csv"]

    again = _ingest_and_commit(s, dt.date(2015, 7, 1))
    assert again.files == [] and again.data.empty and again.raw_paths == []

    (drop / "b.csv").write_text("date,close\n2015-06-04,13\n")
    assert _files_taken(_ingest_and_commit(s, dt.date(2015, 7, 2))) == ["b.csv"]

    # a re-delivered file is a revision, even of an old date: taken again, no duplicate
    (drop / "a.csv").write_text("date,close\n2015-06-01,10\n2015-06-02,11.5\n2015-06-03,12\n")
    assert _files_taken(_ingest_and_commit(s, dt.date(2015, 7, 3))) == ["a.csv"]
    curated = read_curated(s.data_dir, "prices", ["X"]).sort_values("date")
    assert list(curated["close"]) == [10, 11.5, 12, 13]
    assert len(list((tmp_path / "d" / "raw").rglob("*.csv"))) == 3  # a, b, a revised


def test_file_drop_touched_but_unchanged_is_not_taken_again(tmp_path: Path) -> None:
    import os

    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.csv").write_text("date,close\n2015-06-01,10\n")
    s = _drop_settings(tmp_path, drop)
    _ingest_and_commit(s, dt.date(2015, 6, 30))
    os.utime(drop / "a.csv", (1e9, 1e9))  # same bytes, another time
    assert _ingest_and_commit(s, dt.date(2015, 6, 30)).files == []


def test_file_drop_not_committed_is_offered_again(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.csv").write_text("date,close\n2015-06-01,10\n")
    s = _drop_settings(tmp_path, drop)
    (source,) = sources_for(s)
    first = ingest_source(s, source, dt.date(2015, 6, 30))  # the run dies before committing
    assert _files_taken(first) == ["a.csv"]
    second = _ingest_and_commit(s, dt.date(2015, 6, 30))
    assert _files_taken(second) == ["a.csv"]
    assert second.raw_paths == first.raw_paths or len(second.raw_paths) == 1
    assert len(read_curated(s.data_dir, "prices", ["X"])) == 1


def test_file_drop_with_later_rows_stays_open_until_taken_whole(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.csv").write_text("date,close\n2015-06-01,10\n2015-06-02,11\n2015-06-03,12\n")
    s = _drop_settings(tmp_path, drop)
    first = _ingest_and_commit(s, dt.date(2015, 6, 2))  # a backfill of an old date
    assert len(first.data) == 2 and not first.files[0][1].done
    second = _ingest_and_commit(s, dt.date(2015, 6, 3))
    assert len(second.data) == 3 and second.files[0][1].done
    assert second.raw_paths == first.raw_paths  # the same bytes are landed once
    assert len(read_curated(s.data_dir, "prices", ["X"])) == 3
    assert _ingest_and_commit(s, dt.date(2015, 6, 4)).files == []


def test_file_drop_refuses_a_huge_file(tmp_path: Path) -> None:
    import pytest

    from pipeline_lib.ingest.sources import SourceError

    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "big.csv").write_text("date,close\n" + "2015-06-01,10\n" * 1000)
    s = _drop_settings(tmp_path, drop, ingest={"max_file_bytes": 1000})
    (source,) = sources_for(s)
    with pytest.raises(SourceError, match=r"big\.csv is 14,011 bytes, over the limit of 1,000"):
        ingest_source(s, source, dt.date(2015, 6, 30))
    assert not (tmp_path / "d" / "raw").exists()
