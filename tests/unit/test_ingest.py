"""Ingest: watermarks, raw landing, and which rows a point-in-time run keeps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pipeline_lib.config import load_settings
from pipeline_lib.curate import commit_batches, read_curated
from pipeline_lib.ingest import fetch_window, ingest_source, sources_for


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
        d(2015, 2, 5), d(2015, 2, 10)
    )
    # ...widened back when curated data stops before it, so no hole is left
    assert fetch_window(d(2015, 1, 20), start, d(2015, 2, 10), 3, d(2015, 2, 5)) == (
        d(2015, 1, 21), d(2015, 2, 10)
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
        "2015-06-29", "2015-06-30", "2015-07-01", "2015-07-02"
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
