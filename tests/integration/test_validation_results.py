"""The gate records every batch's validation result in SQL (SQLite and PostgreSQL), failed ones
included and before the run fails; reruns are idempotent; the GX Data Docs site is built."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from pipeline_lib import db, schema
from pipeline_lib.ingest.batch import Batch
from pipeline_lib.ingest.gate import check_batches
from pipeline_lib.validation import ValidationFailed

AS_OF = dt.date(2013, 5, 31)


def _prices(series_id: str, close: float) -> pd.DataFrame:
    dates = pd.bdate_range("2013-05-27", AS_OF)
    values = close + np.arange(len(dates), dtype="float64")
    return pd.DataFrame(
        {"series_id": series_id, "date": dates, "close": values, "volume": 1e6}
    ).reindex(columns=schema.PRICE_COLUMNS)


def _batches() -> list[Batch]:
    window = (dt.date(2013, 5, 27), AS_OF)
    good = _prices("SP500", 1600.0)
    bad = _prices("WTI", 95.0)
    bad.loc[2, "close"] = -1.0
    empty = pd.DataFrame(columns=schema.WEATHER_COLUMNS)
    return [
        Batch(schema.PRICES, "SP500", "sample", window, good, ["raw/a.json"]),
        Batch(schema.PRICES, "WTI", "sample", window, bad, ["raw/b.json"]),
        Batch(schema.WEATHER, "seattle", "sample", (AS_OF, AS_OF), empty),
    ]


def _rows(engine: Engine) -> list[dict]:
    table = db.validation_results
    with engine.connect() as conn:
        result = conn.execute(select(table).order_by(table.c.dataset, table.c.batch))
        return [dict(r._mapping) for r in result]


def test_results_written_for_every_batch_before_failing(db_engine: Engine, tmp_path: Path) -> None:
    db.create_schema(db_engine)
    for run in ("run-1", "run-2"):  # the ingest flow starts its run before validating
        db.start_run(db_engine, run, "ingest", AS_OF)
    data_dir = str(tmp_path / "data")
    for _ in range(2):  # a retry of the same run rewrites the same rows
        with pytest.raises(ValidationFailed) as info:
            check_batches(data_dir, _batches(), AS_OF, engine=db_engine, run_id="run-1")
        assert [r.batch_name for r in info.value.failed] == ["prices-WTI"]

    rows = _rows(db_engine)
    assert [(r["dataset"], r["batch"], r["success"]) for r in rows] == [
        ("prices", "prices-SP500", True),
        ("prices", "prices-WTI", False),
        ("weather", "weather-seattle", True),
    ]
    sp500, wti, weather = rows
    assert {r["run_id"] for r in rows} == {"run-1"}
    assert all(r["as_of"] == AS_OF and r["validated_at"] is not None for r in rows)
    assert (sp500["row_count"], sp500["failed_critical"], sp500["failed_warning"]) == (5, 0, 0)
    assert sp500["evaluated"] == sp500["successful"] > 20
    assert (wti["failed_critical"], wti["successful"]) == (1, wti["evaluated"] - 1)
    failed = json.loads(wti["failed_expectations"])
    assert failed == [
        {
            "check": "close_positive",
            "columns": ["close"],
            "expectation_type": "expect_column_values_to_be_between",
            "severity": "critical",
            "unexpected_count": 1,
            "rows": [{"series_id": "WTI", "date": "2013-05-29", "close": -1.0}],
            "details": "",
        }
    ]
    # nothing new and nothing curated for the weather: a freshness warning, not a failure
    assert (weather["row_count"], weather["failed_warning"]) == (0, 1)
    assert json.loads(weather["failed_expectations"])[0]["check"] == "fresh"

    check_batches(data_dir, _batches()[:1], AS_OF, engine=db_engine, run_id="run-2")
    assert len(_rows(db_engine)) == 4  # a new run adds its own row

    index = tmp_path / "data" / "reports" / "data_docs" / "index.html"
    assert index.is_file() and "prices-WTI" in index.read_text()
    pages = list((index.parent / "validations").rglob("*.html"))
    assert len(pages) >= 4  # this run's batches (a retry keeps its pages), and run-2's


def test_curated_history_feeds_the_gap_check(tmp_path: Path) -> None:
    """Without history given, the gate reads curated rows: a batch starting after a hole warns."""
    from pipeline_lib.ingest.curate import commit_batches

    data_dir = str(tmp_path)
    old = _prices("SP500", 1500.0).assign(date=pd.bdate_range("2013-05-01", periods=5))
    window = (dt.date(2013, 5, 1), dt.date(2013, 5, 7))
    commit_batches(data_dir, [Batch(schema.PRICES, "SP500", "sample", window, old)])
    batch = Batch(
        schema.PRICES, "SP500", "sample", (dt.date(2013, 5, 27), AS_OF), _prices("SP500", 1505.0)
    )
    (report,) = check_batches(data_dir, [batch], AS_OF)
    assert [w.check for w in report.warnings] == ["no_long_gap"]
    assert report.warnings[0].rows[0]["date"] == "2013-05-27"


def test_data_docs_skipped_for_a_remote_folder(caplog: pytest.LogCaptureFixture) -> None:
    from pipeline_lib.validation.docs import build_data_docs

    with caplog.at_level("INFO"):
        assert build_data_docs("memory://somewhere", [], "run-1", AS_OF) is None
    assert "Data Docs skipped" in caplog.text
