"""Values that must not pass, and revisions, through the whole ingest stage (real files, raw/,
Parquet): an absurd close is refused naming the file, the check and the day; a revision of a
curated day is applied and recorded (report, note, ``validation_results``); revising most of
the history is refused; an identical file delivered again is no revision. Curated data is left
unchanged by every refused batch. The checks one by one: tests/unit/test_validation_matrix.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from pipeline_lib import db
from pipeline_lib.config import load_settings
from pipeline_lib.ingest import curate, gate, landing
from pipeline_lib.validation.report import ValidationFailed, ValidationReport
from tests.integration.ingest_crash import run_ingest
from tests.integration.test_bad_input import AS_OF, GOOD_PRICES, _curated, _rows, _setup

RUN_ID = "ingest-bad-values"


def _ingest_recorded(cfg: Path, as_of: dt.date) -> list[ValidationReport]:
    """The steps of ``run_ingest``, with the database the ingest task gives the gate: the
    reports are also written to ``validation_results`` under ``RUN_ID``."""
    settings = load_settings(str(cfg))
    batches = [landing.ingest_source(settings, s, as_of) for s in landing.sources_for(settings)]
    with db.engine_scope(settings.db_url) as engine:
        db.create_schema(engine)
        db.start_run(engine, RUN_ID, "ingest", as_of)
        reports = gate.check_batches(
            settings.data_dir,
            batches,
            as_of,
            thresholds=settings.validation,
            engine=engine,
            run_id=RUN_ID,
        )
    curate.commit_batches(settings.data_dir, batches)
    return reports


def _stored(cfg: Path) -> dict[str, dict]:
    """``validation_results`` rows of ``RUN_ID`` by batch name."""
    with db.engine_scope(load_settings(str(cfg)).db_url) as engine, engine.connect() as conn:
        table = db.validation_results
        rows = conn.execute(select(table).where(table.c.run_id == RUN_ID))
        return {r.batch: dict(r._mapping) for r in rows}


def _json_report(data: Path, batch: str) -> dict:
    return json.loads(
        (data / "reports" / "validation" / AS_OF.isoformat() / f"{batch}.json").read_text()
    )


def _refused(cfg: Path, data: Path) -> str:
    """Run the ingest stage, expect ValidationFailed and curated data unchanged; the message."""
    before = _curated(data)
    with pytest.raises(ValidationFailed) as info:
        run_ingest(str(cfg), AS_OF)
    for key, df in _curated(data).items():
        pd.testing.assert_frame_equal(df, before[key], obj=f"curated {key}")
    assert list((data / "quarantine").rglob("report.json"))
    return str(info.value)


def test_absurd_close_is_refused_naming_file_check_and_day(tmp_path: Path) -> None:
    """A close of 1e12 in a series trading near 11 (a factor of about 1e11 day on day), the day
    after back to normal: refused, naming the spike's day, not the day after."""
    cfg, prices, _ = _setup(tmp_path)
    (prices / "b.csv").write_text(
        _rows("2015-06-11,11,12,10,1000000000000,1011", "2015-06-12,11,12,10,11.4,1012")
    )
    message = _refused(cfg, tmp_path / "data")
    assert re.search(
        r"prices-X' from source 'file': b\.csv .*close_factor_not_absurd \(jump_factor\).*"
        r"expected jump_factor <= 100.*1 row\(s\), e\.g\. series X 2015-06-11 jump_factor=",
        message,
        re.S,
    ), message
    assert "2015-06-12" not in message


def test_revision_of_one_day_is_applied_and_recorded(tmp_path: Path) -> None:
    """A file that corrects 3 June by 5% (close 10.8 -> 11.34, high with it) and adds a day:
    committed, and the revision is in the report (JSON and SQL), and the run's notes."""
    cfg, prices, _ = _setup(tmp_path)
    data = tmp_path / "data"
    (prices / "b.csv").write_text(
        _rows("2015-06-03,10.3,11.9,9.3,11.34,1003", "2015-06-11,11,12,10,11.5,1011")
    )
    reports = _ingest_recorded(cfg, AS_OF)

    curated = _curated(data)["prices"].set_index("date")
    assert curated.loc["2015-06-03", ["high", "close"]].tolist() == [11.9, 11.34]  # applied
    assert curated.loc["2015-06-11", "close"] == 11.5 and len(curated) == 9
    report = next(r for r in reports if r.batch_name == "prices-X")
    note = "prices-X: 1 row revised: 2015-06-03 high 11.3 -> 11.9, close 10.8 -> 11.34"
    assert report.success and report.notes == [note]  # flows/ingest.py puts it in the notes
    revision = next(w for w in report.warnings if w.check == "revisions")
    row = {"series_id": "X", "date": "2015-06-03", "high": "11.3 -> 11.9", "close": "10.8 -> 11.34"}
    assert revision.rows == [row] and revision.columns == ["high", "close"]
    assert "1 of 8 curated rows revised (12.5%): applied" in revision.details

    saved = _json_report(data, "prices-X")
    assert saved["notes"] == [note]
    assert [w for w in saved["warnings"] if w["check"] == "revisions"][0]["rows"] == [row]
    stored = _stored(cfg)["prices-X"]
    assert stored["success"] and stored["failed_critical"] == 0
    (entry,) = [e for e in json.loads(stored["failed_expectations"]) if e["check"] == "revisions"]
    assert (entry["severity"], entry["unexpected_count"], entry["rows"]) == ("warning", 1, [row])


def test_revising_most_of_the_history_is_refused(tmp_path: Path) -> None:
    """Every curated day again, each close 5% higher: 8 of 8 rows revised, over 5 rows and 5%:
    refused, naming the rows; curated data is unchanged."""
    cfg, prices, _ = _setup(tmp_path)
    lines = GOOD_PRICES.splitlines()[1:]
    shifted = [line.rsplit(",", 2) for line in lines]  # [date,open,high,low], close, volume
    (prices / "b.csv").write_text(
        _rows(*(f"{head},{float(close) * 1.05:.4f},{volume}" for head, close, volume in shifted))
    )
    message = _refused(cfg, tmp_path / "data")
    assert re.search(
        r"prices-X' from source 'file': b\.csv .*revisions \(close\) \[curated_values_unchanged\]"
        r".*8 row\(s\): 8 of 8 curated rows revised \(100\.0%\): over the limit, refused.*"
        r"max_revision_share.*series X 2015-06-01 close=10\.6 -> 11\.13",
        message,
        re.S,
    ), message


def test_identical_file_again_is_no_revision(tmp_path: Path) -> None:
    """The same rows delivered again under another name (and a new day): no revision."""
    cfg, prices, _ = _setup(tmp_path)
    (prices / "again.csv").write_text(GOOD_PRICES + "2015-06-11,11,12,10,11.5,1011\n")
    reports = _ingest_recorded(cfg, AS_OF)
    report = next(r for r in reports if r.batch_name == "prices-X")
    assert report.success and report.notes == [], report.summary()
    assert "revisions" not in [w.check for w in report.warnings]
    assert len(_curated(tmp_path / "data")["prices"]) == 9
