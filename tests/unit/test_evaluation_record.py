"""The evaluation record: windows kept as first scored, read point in time, and the choice made
on the record and tonight's backtest together."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import SelectionConfig, load_settings
from pipeline_lib.forecasting import evaluation_record, registry
from pipeline_lib.forecasting.per_bucket import choose_all
from pipeline_lib.forecasting.selection import RULES

H = 3
START = pd.Timestamp("2021-01-04")


def _rows(windows: range, losses: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """Backtest rows of one series ``S`` on the given windows (``forecast_date`` = START plus
    two business days per window), horizons 1..H: each model's scaled error its mean loss with
    seeded noise; ``lstm`` rows are the champion ``v1``'s."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, mean in losses.items():
        version = "v1" if model == "lstm" else f"baseline-{model}"
        for w in windows:
            for h in range(1, H + 1):
                rows.append(
                    {
                        schema.SERIES_ID: "S",
                        "forecast_date": START + pd.offsets.BDay(2 * w),
                        "horizon": h,
                        "model": model,
                        "model_version": version,
                        "scaled_error": max(0.0, mean + rng.normal(0, 0.3)),
                        "abs_error": 1.0,
                        "yhat": 1.0,
                        "actual": 1.0,
                    }
                )
    frame = pd.DataFrame(rows)
    summary = (
        frame.groupby(["model", "model_version", schema.SERIES_ID])["scaled_error"]
        .mean()
        .rename("mase")
        .reset_index()
        .assign(horizon="ALL")
    )
    return frame, summary


def _night(
    models: Path,
    as_of: dt.date,
    windows: range,
    losses: dict[str, float],
    record_windows: int = 100,
    seed: int = 0,
) -> registry.Selection:
    """One night as ``champion.evaluate`` runs it: read the record as of the night, choose,
    save the selection and what the night adds to the record."""
    rows, summary = _rows(windows, losses, seed)
    config = SelectionConfig(rule="best", bucket_ends=[1], record_windows=record_windows)
    record = evaluation_record.read(str(models), as_of, as_of - dt.timedelta(days=400))
    baselines = [m for m in losses if m != "lstm"]
    sel = registry.select(
        summary, rows, as_of, "v1", None, baselines, horizon=H, config=config, record=record
    )
    registry.save_selection(str(models), sel)
    return sel


def test_the_evidence_path_chooses_as_the_rows_do() -> None:
    rng = np.random.default_rng(4)
    for trial in range(6):
        losses = {m: float(rng.uniform(0.5, 1.5)) for m in ["naive", "linear", "ets", "lstm"]}
        rows, _ = _rows(range(int(rng.integers(8, 40))), losses, seed=trial)
        rows.loc[rng.integers(0, len(rows), 5), "scaled_error"] = np.nan  # gaps
        evidence = evaluation_record.window_losses(rows, H, [1])
        for rule in RULES:
            want = choose_all(rows, H, [1], rule, step=2)
            got = choose_all(rows, H, [1], rule, evidence, step=2)
            assert got == want, (trial, rule)


def test_windows_are_kept_as_first_scored_and_read_before_the_night(tmp_path: Path) -> None:
    first, second = dt.date(2021, 6, 1), dt.date(2021, 6, 15)
    one = _night(tmp_path, first, range(0, 40), {"naive": 1.0, "linear": 0.8, "lstm": 1.2})
    assert one.choices["S"][0]["evidence"]["windows"] == 40
    kept = pd.read_parquet(tmp_path / "evaluation_record" / f"{first}.parquet")
    assert kept["forecast_date"].nunique() == 40 and set(kept["model"]) == {
        "naive",
        "linear",
        "lstm",
    }
    # the next night's backtest repeats windows 20..39 with other losses: the record's stay,
    # and only windows 40..59 are new
    two = _night(
        tmp_path, second, range(20, 60), {"naive": 1.0, "linear": 3.0, "lstm": 1.2}, seed=1
    )
    evidence = two.choices["S"][0]["evidence"]
    assert evidence["windows"] == 60
    new = two.new_evidence
    assert new is not None and new["forecast_date"].min() == START + pd.offsets.BDay(80)
    record = evaluation_record.read(str(tmp_path), second, first)
    tonight, _ = _rows(range(20, 60), {"naive": 1.0, "linear": 3.0, "lstm": 1.2}, seed=1)
    before, _ = _rows(range(0, 40), {"naive": 1.0, "linear": 0.8, "lstm": 1.2})
    h1 = pd.concat(
        [
            before.loc[before["horizon"] == 1],
            tonight.loc[
                (tonight["horizon"] == 1)
                & (tonight["forecast_date"] > record["forecast_date"].max())
            ],
        ]
    )
    linear = h1.loc[h1["model"] == "linear", "scaled_error"].mean()
    assert evidence["mase"]["linear"] == pytest.approx(linear, rel=1e-12)


def test_a_rerun_repeats_its_choice_and_a_later_night_is_not_read(tmp_path: Path) -> None:
    nights = [dt.date(2021, 6, 1), dt.date(2021, 6, 15), dt.date(2021, 6, 29)]
    losses = {"naive": 1.0, "linear": 0.9, "lstm": 1.1}
    one = _night(tmp_path, nights[0], range(0, 40), losses)
    two = _night(tmp_path, nights[1], range(10, 50), losses, seed=1)
    _night(tmp_path, nights[2], range(20, 60), {**losses, "naive": 0.1}, seed=2)
    # a rerun of the second night reads the first night's record only, as the first run did
    again = _night(tmp_path, nights[1], range(10, 50), losses, seed=1)
    assert again == two and again.choices == two.choices
    assert again.new_evidence is not None and two.new_evidence is not None
    pd.testing.assert_frame_equal(again.new_evidence, two.new_evidence)
    # and so does a rerun of the first: nothing dated on or after it
    assert _night(tmp_path, nights[0], range(0, 40), losses).choices == one.choices
    assert evaluation_record.read(str(tmp_path), nights[0], dt.date(2020, 1, 1)).empty


def test_the_newest_windows_are_read_and_none_without_a_record(tmp_path: Path) -> None:
    losses = {"naive": 1.0, "linear": 0.9, "lstm": 1.1}
    _night(tmp_path, dt.date(2021, 6, 1), range(0, 40), losses, record_windows=50)
    two = _night(tmp_path, dt.date(2021, 6, 29), range(20, 60), losses, record_windows=50)
    assert all(c["evidence"]["windows"] == 50 for c in two.choices["S"])
    off = tmp_path / "off"
    alone = _night(off, dt.date(2021, 6, 1), range(0, 40), losses, record_windows=0)
    assert alone.new_evidence is None and not (off / "evaluation_record").exists()
    assert "new_evidence" not in alone.to_dict()
    assert registry.Selection.from_dict(alone.to_dict()) == alone


def test_span_days_reaches_the_windows_a_night_reads() -> None:
    # 100 windows before tonight's 40, two rows apart, horizon 14: 294 business days
    assert evaluation_record.span_days(100, 40, 2, 14) == 426


def test_the_record_serves_tonights_contest_only(tmp_path: Path) -> None:
    first, second = dt.date(2021, 6, 1), dt.date(2021, 6, 29)
    _night(tmp_path, first, range(0, 40), {"naive": 1.0, "linear": 0.9, "lstm": 1.1})
    # the record holds a series that left the settings: it is not chosen tonight
    record = evaluation_record.read(str(tmp_path), second, first)
    gone = record.assign(**{schema.SERIES_ID: "GONE"})
    evaluation_record.save(str(tmp_path), dt.date(2021, 6, 2), gone)
    # a baseline new tonight (ets) competes on tonight's 40 windows at once, not on the
    # record's older ones, where it has no loss; a model gone from the contest (lstm) is not
    # read from the record
    sel = _night(tmp_path, second, range(20, 60), {"naive": 1.0, "linear": 0.9, "ets": 0.5})
    assert set(sel.choices) == {"S"}
    for choice in sel.choices["S"]:
        assert choice["evidence"]["windows"] == 40 and choice["evidence"]["left_out"] == []
        assert set(choice["evidence"]["mase"]) == {"naive", "linear", "ets"}
    assert sel.published["S"]["1-1"] == "ets"
    # once ets has a record of its own, the older windows where every model has a loss count
    third = _night(
        tmp_path, dt.date(2021, 7, 27), range(40, 80), {"naive": 1.0, "linear": 0.9, "ets": 0.5}
    )
    assert third.choices["S"][0]["evidence"]["windows"] == 60


def test_an_unreadable_file_is_left_out_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    losses = {"naive": 1.0, "linear": 0.9, "lstm": 1.1}
    _night(tmp_path, dt.date(2021, 6, 1), range(0, 40), losses)
    broken = tmp_path / "evaluation_record" / "2021-06-02.parquet"
    broken.write_bytes(b"not parquet")
    with caplog.at_level("WARNING", logger="pipeline_lib.forecasting.evaluation_record"):
        record = evaluation_record.read(str(tmp_path), dt.date(2021, 6, 29), dt.date(2021, 1, 1))
    assert record["forecast_date"].nunique() == 40  # the readable night's windows
    assert "2021-06-02.parquet" in caplog.text and "unreadable" in caplog.text
    sel = _night(tmp_path, dt.date(2021, 6, 29), range(20, 60), losses)
    assert sel.choices["S"][0]["evidence"]["windows"] == 60


def test_prune_deletes_only_the_files_before_its_date(tmp_path: Path) -> None:
    losses = {"naive": 1.0, "linear": 0.9, "lstm": 1.1}
    for night, first in [(dt.date(2019, 1, 2), 0), (dt.date(2020, 6, 1), 40)]:
        _night(tmp_path, night, range(first, first + 40), losses)
    lineage = tmp_path / "evaluation_record" / "sub"
    evaluation_record.save(
        str(tmp_path), "2019-01-03", pd.DataFrame(columns=evaluation_record.COLUMNS), "sub"
    )
    assert evaluation_record.prune(str(tmp_path), dt.date(2020, 1, 1)) == 1
    left = sorted(p.name for p in (tmp_path / "evaluation_record").glob("*.parquet"))
    assert left == ["2020-06-01.parquet"] and (lineage / "2019-01-03.parquet").exists()
    assert evaluation_record.prune(str(tmp_path), dt.date(2020, 1, 1)) == 0
    assert evaluation_record.prune(str(tmp_path / "none"), dt.date(2020, 1, 1)) == 0
    settings = load_settings(None, data_dir=str(tmp_path))
    assert evaluation_record.reach(settings) == evaluation_record.span_days(100, 40, 2, 14)
