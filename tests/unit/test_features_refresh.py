"""The features stage writes what changed: nothing on a night with nothing new, a new day's rows
on the next one, and the rows a revised price reaches (its day and the days after it), with
the same features as a rebuild from scratch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import load_settings
from pipeline_lib.features.stage import load_features, refresh_features
from pipeline_lib.ingest import curate
from pipeline_lib.ingest.batch import Batch

AS_OF = dt.date(2015, 12, 31)


def _prices(series_id: str, dates: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, len(dates))))
    frame = pd.DataFrame({"series_id": series_id, "date": dates, "close": close, "volume": 1e6})
    frame[["open", "high", "low"]] = np.column_stack([close, close * 1.01, close * 0.99])
    return frame.reindex(columns=schema.PRICE_COLUMNS)


def _commit(data_dir: str, frames: list[pd.DataFrame]) -> None:
    batches = [
        Batch(
            schema.PRICES,
            f["series_id"].iloc[0],
            "test",
            (f["date"].min().date(), f["date"].max().date()),
            f,
        )  # fmt: skip
        for f in frames
    ]
    curate.commit_batches(data_dir, batches)


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.parquet")}


def test_only_new_and_revised_rows_are_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = load_settings(
        data_dir=str(data_dir), start_date="2014-01-01", series=[{"id": "A"}, {"id": "B"}]
    )
    dates = pd.bdate_range("2014-01-01", AS_OF)
    frames = [_prices("A", dates, 1), _prices("B", dates, 2)]
    _commit(str(data_dir), [f.iloc[:-1] for f in frames])
    day_before = dates[-2].date()
    assert refresh_features(settings, day_before) == 2 * (len(dates) - 1)
    features = data_dir / "features"
    written = _mtimes(features)
    assert refresh_features(settings, day_before) == 0  # nothing new: nothing written
    assert _mtimes(features) == written

    _commit(str(data_dir), [f.iloc[-1:] for f in frames])  # the next day
    assert refresh_features(settings, AS_OF) == 2
    after = _mtimes(features)
    changed = sorted(k for k in after if after[k] != written.get(k))
    assert changed == [f"series_id={s}/year=2015/part-0.parquet" for s in ("A", "B")]

    revised = frames[0].iloc[[-40]].copy()  # a price corrected 40 business days back
    revised["close"] *= 1.05
    _commit(str(data_dir), [revised])
    # its day and the days after it that its rolling windows reach (28 rows), no more: each
    # window is summed on its own, so nothing carries past it, not even rounding
    assert refresh_features(settings, AS_OF) == 28
    stored = load_features(settings, AS_OF)

    fresh = tmp_path / "fresh"
    _commit(str(fresh), [frames[0].iloc[:-40], revised, frames[0].iloc[-39:], frames[1]])
    again = settings.model_copy(update={"data_dir": str(fresh)})
    refresh_features(again, AS_OF)
    # computed from a window before the revision, equal to the last bit to a build from scratch
    pd.testing.assert_frame_equal(stored, load_features(again, AS_OF), check_exact=True)
