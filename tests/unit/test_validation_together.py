"""Batches validated together (one GX run per data set) get the reports they get alone, and the
gate reads each data set's curated history once for all its batches."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, ClassVar
from unittest import mock

import fsspec
import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from pipeline_lib import schema
from pipeline_lib.ingest import gate
from pipeline_lib.ingest.batch import Batch
from pipeline_lib.ingest.curate import commit_batches, read_curated
from pipeline_lib.validation import ValidationFailed, check_freshness, reuse, validate_batch
from pipeline_lib.validation.combined import check_freshness_all, validate_batches
from pipeline_lib.validation.grouping import Item
from pipeline_lib.validation.report import MAX_ROWS

AS_OF = dt.date(2013, 5, 31)


def _prices(series_id: str, start: str, end: dt.date | str, level: float = 100.0) -> pd.DataFrame:
    dates = pd.bdate_range(start, end)
    close = level + 0.1 * np.sin(np.arange(len(dates)))  # calm changes: no jump, no gap
    return pd.DataFrame(
        {
            "series_id": series_id,
            "date": dates,
            "open": close,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 1e6,
        }
    )[schema.PRICE_COLUMNS]


def _items() -> list[Item]:
    """Four batches with a year of history each: clean, one critical row, more warnings than a
    report keeps, and two revised curated days."""
    ends = {"A": "2013-05-24", "B": "2013-05-24", "C": "2013-05-17", "D": "2013-05-24"}
    history = {k: _prices(k, "2012-06-01", end) for k, end in ends.items()}
    new = {k: _prices(k, "2013-05-27", AS_OF) for k in history}
    new["B"].loc[2, "close"] = -1.0  # critical: close_positive, on B's 2013-05-29 only
    new["C"] = _prices("C", "2013-05-20", AS_OF)
    new["C"]["open"] = new["C"]["high"] + 1.0  # a warning on each of C's 10 rows
    revised = history["D"].tail(2).assign(close=lambda df: df["close"] * 1.002)
    new["D"] = pd.concat([revised, new["D"]], ignore_index=True)
    return [Item(f"prices-{k}", k, new[k], history[k]) for k in history]


def _same(together: list[Any], alone: list[Any]) -> None:
    for a, b in zip(together, alone, strict=True):
        assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_batches_validated_together_get_the_reports_they_get_alone() -> None:
    items = _items()
    validated = validate_batches(items, schema.PRICES, AS_OF)
    alone = [validate_batch(i.data, schema.PRICES, AS_OF, i.name, i.history) for i in items]
    _same(validated.reports, alone)  # verdicts, counts, rows, notes, and GX's own result
    (run,) = validated.runs  # one GX run for the four
    assert run.batches == [i.name for i in items] and run.name == "prices-A-and-3-more"

    clean, failed, warned, revised = validated.reports
    assert clean.success and not clean.warnings and clean.gx_result["success"]
    assert not failed.success and [f.check for f in failed.failures] == ["close_positive"]
    assert failed.failures[0].rows == [{"series_id": "B", "date": "2013-05-29", "close": -1.0}]
    assert all(row["series_id"] == "C" for f in warned.warnings for row in f.rows)
    (open_high,) = [w for w in warned.warnings if w.check == "high_ge_open"]
    assert open_high.unexpected_count == 10 and len(open_high.rows) == MAX_ROWS
    assert warned.success and warned.row_count == 10
    assert [w.check for w in revised.warnings] == ["revisions"] and "prices-D: 2 rows" in (
        revised.notes[0]
    )
    # GX's result of each batch counts its own rows only
    row_counts = [
        r["result"]["observed_value"]
        for report in validated.reports
        for r in report.gx_result["results"]
        if r["expectation_config"]["type"] == "expect_table_row_count_to_be_between"
    ]
    assert row_counts == [5, 5, 10, 7]


def test_a_batch_that_cannot_be_split_is_validated_alone() -> None:
    """A row of another key, or other columns, would make the split ambiguous."""
    items = _items()
    stray = items[0].data.assign(series_id=["A", "A", "B", "A", "A"])  # a row of B's key in A
    extra = items[1].data.assign(note="x")  # an unexpected column: other dtypes and columns
    mixed = [Item("prices-A", "A", stray, items[0].history), items[2], items[3]]
    mixed.append(Item("prices-B", "B", extra, items[1].history))
    validated = validate_batches(mixed, schema.PRICES, AS_OF)
    alone = [validate_batch(i.data, schema.PRICES, AS_OF, i.name, i.history) for i in mixed]
    _same(validated.reports, alone)
    assert [run.batches for run in validated.runs] == [["prices-C", "prices-D"]]
    assert [f.check for f in validated.reports[3].failures] == ["columns", "close_positive"]


def test_freshness_checked_together() -> None:
    items = [
        Item("prices-A", "A", None, _prices("A", "2013-01-01", AS_OF)),  # fresh
        Item("prices-B", "B", None, _prices("B", "2013-01-01", "2013-05-10")),  # stale
        Item("prices-C", "C", None, None),  # nothing curated: its own warning
    ]
    validated = check_freshness_all(items, schema.PRICES, AS_OF)
    alone = [check_freshness(i.history, schema.PRICES, AS_OF, i.name) for i in items]
    _same(validated.reports, alone)
    assert len(validated.runs) == 1
    assert [[w.check for w in r.warnings] for r in validated.reports] == [[], ["fresh"], ["fresh"]]
    assert validated.reports[1].warnings[0].rows[0]["series_id"] == "B"


class CountingFileSystem(MemoryFileSystem):
    """An in-memory filesystem (``counting://``) that records the folders listed in it."""

    protocol = "counting"
    listed: ClassVar[list[str]] = []

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        return super()._strip_protocol(str(path).removeprefix("counting://"))

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        CountingFileSystem.listed.append(self._strip_protocol(path))
        return super().ls(path, detail=detail, **kwargs)


@pytest.fixture
def counting_dir() -> str:
    fsspec.register_implementation("counting", CountingFileSystem, clobber=True)
    return f"counting://gate-{uuid.uuid4().hex[:8]}"


def _listings(data_dir: str, dataset: str) -> int:
    root = f"{data_dir.removeprefix('counting://')}/curated/{dataset}"
    return sum(1 for path in CountingFileSystem.listed if path.lstrip("/").startswith(root))


def test_gate_reads_each_data_set_once(counting_dir: str) -> None:
    keys = ["A", "B", "C", "D"]
    curated = [
        Batch(schema.PRICES, k, "t", (AS_OF, AS_OF), _prices(k, "2012-01-02", "2013-05-24"))
        for k in keys
    ]
    commit_batches(counting_dir, curated)
    CountingFileSystem.listed.clear()
    read_curated(counting_dir, schema.PRICES, keys, AS_OF)
    one_read = _listings(counting_dir, schema.PRICES)  # every folder listed by one read
    assert one_read > 0

    batches = [Batch(schema.PRICES, i.key, "t", (AS_OF, AS_OF), i.data) for i in _items()]
    batches.append(Batch(schema.PRICES, "E", "t", (AS_OF, AS_OF), pd.DataFrame()))  # nothing new
    CountingFileSystem.listed.clear()
    with pytest.raises(ValidationFailed) as info:
        gate.check_batches(counting_dir, batches, AS_OF)
    assert _listings(counting_dir, schema.PRICES) == one_read  # one read for five batches
    assert [r.batch_name for r in info.value.failed] == ["prices-B"]
    assert list(info.value.quarantine_paths) == ["prices/prices-B"]  # that batch alone

    # each batch saw its own key's history: what it gets validated alone on a read of its own
    history = {k: read_curated(counting_dir, schema.PRICES, [k], AS_OF) for k in keys}
    for batch, report in zip(batches[:4], info.value.reports[:4], strict=True):
        past = history[batch.key]
        past = past[past["date"] >= pd.Timestamp(AS_OF - dt.timedelta(days=gate.HISTORY_DAYS))]
        alone = validate_batch(batch.data, schema.PRICES, AS_OF, batch.name, past)
        assert (report.success, report.failures, report.warnings, report.notes) == (
            alone.success,
            alone.failures,
            alone.warnings,
            alone.notes,
        )


def test_data_docs_have_a_page_per_run_and_per_failed_batch(tmp_path: Any) -> None:
    batches = [Batch(schema.PRICES, i.key, "t", (AS_OF, AS_OF), i.data) for i in _items()]
    with pytest.raises(ValidationFailed):
        gate.check_batches(str(tmp_path), batches, AS_OF, run_id="run-1")
    pages = sorted(p.name for p in (tmp_path / "reports" / "data_docs").rglob("prices-*.html"))
    assert pages == ["prices-A-and-3-more.html", "prices-B.html"]  # B failed: its own page too
    run = (tmp_path / "reports" / "data_docs").rglob("prices-A-and-3-more.html")
    html = next(run).read_text()
    assert "2013-05-29" in html  # the offending rows are named by key and date
    kept = sorted(p.name for p in (tmp_path / "reports" / "validation").rglob("*.json"))
    assert kept == [f"prices-{k}.json" for k in "ABCD"]  # every batch keeps its own report


def test_more_offending_rows_than_gx_keeps_values_of_are_split_by_batch() -> None:
    """GX keeps at most 200 offending values of a check even in a COMPLETE result, but every
    offending row's key: 205 batches whose day fails a column check and a pair check each get
    the report they get alone (it used to stop the night with an IndexError)."""
    items = []
    for k in range(205):
        sid = f"S{k:04d}"
        new = _prices(sid, "2013-05-31", AS_OF)
        new["close"] = -1.0  # close_positive (critical) and close_ge_low, on each batch's day
        items.append(Item(f"prices-{sid}", sid, new, _prices(sid, "2013-01-01", "2013-05-30")))
    validated = validate_batches(items, schema.PRICES, AS_OF)
    assert len(validated.runs) == 1  # validated together, not one GX run a batch
    for i in (0, 150, 204):
        alone = validate_batch(items[i].data, schema.PRICES, AS_OF, items[i].name, items[i].history)
        _same([validated.reports[i]], [alone])
    last = validated.reports[204]
    checks = {f.check: f.rows for f in last.failures + last.warnings}
    assert checks["close_positive"] == [{"series_id": "S0204", "date": "2013-05-31", "close": -1.0}]
    assert "close_ge_low" in checks


def test_a_second_freshness_check_of_the_same_rows_reuses_the_first(tmp_path: Any) -> None:
    """A rerun of a night with nothing new takes the freshness reports the first run's GX check
    made (no GX run, no new Data Docs page) and records them as its own; a changed newest row
    or another date is checked again."""
    data_dir = str(tmp_path)
    curated = [
        Batch(schema.PRICES, "A", "t", (AS_OF, AS_OF), _prices("A", "2013-01-01", AS_OF)),
        Batch(schema.PRICES, "B", "t", (AS_OF, AS_OF), _prices("B", "2013-01-01", "2013-05-10")),
    ]
    commit_batches(data_dir, curated)
    empty = [Batch(schema.PRICES, k, "t", (AS_OF, AS_OF), pd.DataFrame()) for k in "AB"]
    real = reuse.check_freshness_all
    with mock.patch.object(reuse, "check_freshness_all", side_effect=real) as gx:
        first = gate.check_batches(data_dir, empty, AS_OF, run_id="run-1")
        second = gate.check_batches(data_dir, empty, AS_OF, run_id="run-2")
        assert gx.call_count == 1  # the second run asked GX nothing
        _same(second, first)
        assert [[w.check for w in r.warnings] for r in second] == [[], ["fresh"]]
        docs = tmp_path / "reports" / "data_docs"
        assert any("run-1" in str(p) for p in docs.rglob("*.html"))
        assert not any("run-2" in str(p) for p in docs.rglob("*.html"))

        # a revised value is not what freshness reads: still the same answer
        revised = _prices("B", "2013-05-10", "2013-05-10", level=101.0)
        commit_batches(data_dir, [Batch(schema.PRICES, "B", "t", (AS_OF, AS_OF), revised)])
        gate.check_batches(data_dir, empty, AS_OF, run_id="run-3")
        assert gx.call_count == 1
        # B has a newer row: its newest row differs, so the data set is checked again
        newer = _prices("B", "2013-05-13", "2013-05-13")
        commit_batches(data_dir, [Batch(schema.PRICES, "B", "t", (AS_OF, AS_OF), newer)])
        gate.check_batches(data_dir, empty, AS_OF, run_id="run-3b")
        assert gx.call_count == 2
        later = AS_OF + dt.timedelta(days=3)  # another date: B is staler
        gate.check_batches(data_dir, empty, later, run_id="run-4")
        assert gx.call_count == 3

    torn = tmp_path / "state" / "freshness" / AS_OF.isoformat() / f"{schema.PRICES}.pkl"
    torn.write_bytes(b"not a pickle")  # a torn file: checked again, never trusted
    with mock.patch.object(reuse, "check_freshness_all", side_effect=real) as gx:
        again = gate.check_batches(data_dir, empty, AS_OF, run_id="run-5")
    assert gx.call_count == 1 and [r.success for r in again] == [True, True]
