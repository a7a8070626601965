"""The features stage computes only what may have changed: from the earliest curated change
(noted by each commit) or the new day, reading 28 rows before it, and the result equals a build
from scratch to the last bit; a changed feature set rebuilds every date."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import load_settings
from pipeline_lib.features.stage import load_features, refresh_features
from pipeline_lib.features.state import SeriesState, read_state
from pipeline_lib.ingest import curate, landing
from pipeline_lib.ingest.batch import Batch
from pipeline_lib.store.changes import take_changes

SAMPLE_CONFIG = "pipeline_lib/sample_data/electricity.toml"
FIRST = dt.date(2019, 6, 27)
D = dt.date


def _settings(data_dir: Path, **update: object):
    settings = load_settings(SAMPLE_CONFIG, data_dir=str(data_dir))
    keep = [s for s in settings.series if s.id in ("DE", "NO_2")]
    return settings.model_copy(update={"series": keep, **update})


def _night(settings, as_of: dt.date) -> int:
    """A night's ingest, commit and features. The gate between (GX validations and their
    Data Docs, two thirds of this file's time) is left out: it changes no row of the bundled
    sample, and tests/unit/test_validation*.py and the end-to-end tests run it."""
    batches = [landing.ingest_source(settings, s, as_of) for s in landing.sources_for(settings)]
    curate.commit_batches(settings.data_dir, batches)
    return refresh_features(settings, as_of)


@pytest.fixture(scope="module")
def first_night(tmp_path_factory) -> Path:
    """A data folder after the first night (FIRST), built once for the tests that start there."""
    folder = tmp_path_factory.mktemp("first")
    _night(_settings(folder), FIRST)
    return folder


def _after_first(first_night: Path, tmp_path: Path):
    """The settings of a copy of the first night's folder in ``tmp_path``."""
    shutil.copytree(first_night, tmp_path, dirs_exist_ok=True)
    return _settings(tmp_path)


def _built_from(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("features of")]


def test_each_night_builds_from_its_new_day_and_equals_a_full_build(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline_lib.features.stage")
    settings = _settings(tmp_path / "nightly")
    _night(settings, FIRST)
    assert _built_from(caplog) == ["features of 2 series: every date"]
    nights = [FIRST + dt.timedelta(days=i) for i in range(1, 4)]
    for as_of in nights:
        caplog.clear()
        # one new row per series: the day's price, load and tomorrow's day-ahead forecasts
        assert _night(settings, as_of) == 2
        assert _built_from(caplog) == [f"features of 2 series: from {as_of}"]
        assert take_changes(settings.data_dir) == ([], [])  # the notes are folded in
    state = read_state(settings.data_dir)
    assert {s.through for s in state.values()} == {nights[-1]}
    assert all(s.dirty_from is None for s in state.values())

    caplog.clear()
    assert _night(settings, nights[-1]) == 0  # the same night again: nothing to build
    assert _built_from(caplog) == []

    scratch = _settings(tmp_path / "scratch")
    _night(scratch, nights[-1])
    pd.testing.assert_frame_equal(
        load_features(settings, nights[-1]), load_features(scratch, nights[-1]), check_exact=True
    )


def test_a_file_delivered_again_writes_nothing_and_notes_nothing(first_night, tmp_path):
    settings = _after_first(first_night, tmp_path)
    batches = [landing.ingest_source(settings, s, FIRST) for s in landing.sources_for(settings)]
    curated = tmp_path / "curated"
    before = {p: p.stat().st_mtime_ns for p in curated.rglob("*.parquet")}
    curate.commit_batches(settings.data_dir, batches)  # the same files, delivered again
    assert {p: p.stat().st_mtime_ns for p in curated.rglob("*.parquet")} == before
    assert take_changes(settings.data_dir) == ([], [])


def test_a_revised_price_rebuilds_its_series_from_its_day_only(first_night, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline_lib.features.stage")
    settings = _after_first(first_night, tmp_path)
    revised = curate.read_curated(settings.data_dir, schema.PRICES, ["DE"], FIRST)
    revised = revised.loc[revised[schema.DATE] == pd.Timestamp("2019-05-02")].copy()
    revised["close"] += 1.0
    batch = Batch(schema.PRICES, "DE", "test", (D(2019, 5, 2), D(2019, 5, 2)), revised)
    curate.commit_batches(settings.data_dir, [batch])
    caplog.clear()
    # the revised day and the 27 days whose 28-row mean reaches it ("D": every day a row)
    assert refresh_features(settings, FIRST) == 28
    assert _built_from(caplog) == ["features of 1 series: from 2019-05-02"]


def test_a_changed_feature_set_rebuilds_every_date(first_night, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline_lib.features.stage")
    settings = _after_first(first_night, tmp_path)
    holiday = {
        "name": "holiday_bw", "role": "future", "known_ahead": 3, "source": "holidays",
        "options": {"country": "DE", "subdivision": "BW"},
    }  # fmt: skip
    series = [s.model_dump() for s in settings.series]
    series[0]["covariates"] = [*series[0]["covariates"], holiday]
    changed = load_settings(SAMPLE_CONFIG, data_dir=str(tmp_path), series=series)
    caplog.clear()
    refresh_features(changed, FIRST)
    # the feature set (a global model's inputs) gained a column: every series, whole
    assert _built_from(caplog) == ["features of 2 series: every date"]
    assert "holiday_bw@3" in load_features(changed, FIRST).columns


def test_a_backfill_of_an_earlier_date_leaves_the_later_stale_rows_for_later():
    jan = [D(2020, 1, d) for d in range(1, 32)]
    built = SeriesState("x", through=jan[9])
    assert built.start("x", jan[9]) == (False, None)  # nothing new
    assert built.start("x", jan[10]) == (True, jan[10])  # the new day
    assert built.start("y", jan[9]) == (True, None)  # other inputs: every date
    stale = SeriesState("x", through=jan[9], dirty_from=jan[4])  # a revision of the 5th
    assert stale.start("x", jan[7]) == (True, jan[4])
    after = stale.built("x", jan[7])  # a backfill of the 8th rebuilt the 5th..8th only
    assert after == SeriesState("x", through=jan[9], dirty_from=jan[8])
    assert after.start("x", jan[7]) == (False, None)
    assert after.start("x", jan[9]) == (True, jan[8])
    assert after.built("x", jan[9]) == SeriesState("x", through=jan[9])
    assert SeriesState("x", through=jan[9], dirty_from=jan[8]).start("x", jan[7]) == (False, None)
    # other inputs, rebuilt up to the 8th: what was built after it is stale
    assert built.built("y", jan[7]) == SeriesState("y", through=jan[9], dirty_from=jan[8])


def test_deleted_features_are_built_again_whole(first_night, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline_lib.features.stage")
    settings = _after_first(first_night, tmp_path)
    built = load_features(settings, FIRST)
    shutil.rmtree(tmp_path / "features" / "series_id=NO_2")
    caplog.clear()
    refresh_features(settings, FIRST)
    assert _built_from(caplog) == ["features of 1 series: every date"]
    pd.testing.assert_frame_equal(load_features(settings, FIRST), built, check_exact=True)
