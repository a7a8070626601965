"""Vectorised windowing: one float32 tensor [T, F] per series, windows as ``unfold`` views.

Inputs per time step are the scaled ``y`` (column 0), the scaled past covariates and the
calendar features. A window with origin ``t`` (the last observed step) holds:

- ``past``: steps ``t - lookback + 1 .. t``, all columns   [lookback, F]
- ``future``: calendar columns of steps ``t + 1 .. t + H``  [H, F_cal]
- ``target``: scaled ``y`` at ``t + 1 .. t + H`` minus scaled ``y`` at ``t`` [H]

so the model predicts the change from the last observed value, and a forecast is
``y_scaled[t] + prediction`` before inverse scaling. Steps are observed rows (trading days for
business-day series), not calendar days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.model.scaling import SeriesScalers


@dataclass(frozen=True)
class SeriesArray:
    """One series ready for windowing: its embedding index, dates [T] and inputs [T, F]."""

    series_index: int
    dates: np.ndarray
    values: torch.Tensor


@dataclass(frozen=True)
class WindowSet:
    """Windows of many series, concatenated along the first axis (N windows)."""

    past: torch.Tensor  # [N, lookback, F]
    future: torch.Tensor  # [N, H, F_cal]
    target: torch.Tensor  # [N, H]
    series_index: torch.Tensor  # [N] int64
    origin_index: np.ndarray  # [N] row of the origin within its series
    origin_date: np.ndarray  # [N] datetime64[ns]
    target_end_date: np.ndarray  # [N] datetime64[ns], date of the last target

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def subset(self, mask: np.ndarray) -> WindowSet:
        """The windows where the boolean ``mask`` [N] is true."""
        idx = torch.from_numpy(np.flatnonzero(mask))
        return WindowSet(
            past=self.past[idx],
            future=self.future[idx],
            target=self.target[idx],
            series_index=self.series_index[idx],
            origin_index=self.origin_index[mask],
            origin_date=self.origin_date[mask],
            target_end_date=self.target_end_date[mask],
        )


def training_rows(
    features: pd.DataFrame,
    first: dt.date | pd.Timestamp,
    last: dt.date | pd.Timestamp,
    context: int = 0,
    series_ids: list[str] | None = None,
) -> pd.DataFrame:
    """Rows with a target dated in ``[first, last]``, plus up to ``context`` earlier rows per
    series (the lookback a window starting at ``first`` needs), sorted by (series, date).

    A series with no row in ``[first, last]`` is left out.
    """
    keep = (features[schema.DATE] <= pd.Timestamp(last)) & features[schema.Y].notna()
    if series_ids is not None:
        keep &= features[schema.SERIES_ID].isin(series_ids)
    frame = features.loc[keep].sort_values([schema.SERIES_ID, schema.DATE])
    pos = frame.groupby(schema.SERIES_ID).cumcount()
    in_window = frame[schema.DATE] >= pd.Timestamp(first)
    first_pos = pos.where(in_window).groupby(frame[schema.SERIES_ID]).transform("min")
    return frame.loc[pos >= first_pos - context].reset_index(drop=True)  # NaN drops the series


def series_arrays(
    features: pd.DataFrame,
    scalers: SeriesScalers,
    series_ids: list[str],
    calendar_columns: list[str],
) -> list[SeriesArray]:
    """Scale ``features`` and split them into one :class:`SeriesArray` per known series.

    Columns are ``scalers.columns`` (``y`` first) then ``calendar_columns``. Rows without a
    target are dropped; series not in ``series_ids`` are skipped.
    """
    frame = features.loc[
        features[schema.SERIES_ID].isin(series_ids) & features[schema.Y].notna()
    ].sort_values([schema.SERIES_ID, schema.DATE])
    scaled = scalers.transform(frame)
    calendar = np.nan_to_num(frame[calendar_columns].to_numpy(dtype=np.float32))
    values = torch.from_numpy(np.concatenate([scaled, calendar], axis=1))
    dates = frame[schema.DATE].to_numpy().astype("datetime64[ns]")
    ids = frame[schema.SERIES_ID].to_numpy()
    out = []
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(ids)], strict=True):
        if stop > start:
            out.append(
                SeriesArray(series_ids.index(ids[start]), dates[start:stop], values[start:stop])
            )
    return out


def unfold_windows(values: torch.Tensor, lookback: int, horizon: int) -> torch.Tensor:
    """All windows of ``lookback + horizon`` steps as a view: [T, F] -> [N, lookback + H, F]."""
    return values.unfold(0, lookback + horizon, 1).permute(0, 2, 1)  # [N, L + H, F]


def make_windows(
    series: list[SeriesArray],
    lookback: int,
    horizon: int,
    n_calendar: int,
    cutoff: dt.date | None = None,
) -> WindowSet:
    """Windows of every series whose targets all fall on or before ``cutoff`` (if given).

    The last ``n_calendar`` input columns are the calendar (known-future) features.
    """
    parts: list[WindowSet] = []
    limit = None if cutoff is None else np.datetime64(pd.Timestamp(cutoff).as_unit("ns"))
    for s in series:
        n = s.values.shape[0] - lookback - horizon + 1
        if n <= 0:
            continue
        origin = np.arange(n) + lookback - 1
        end_dates = s.dates[origin + horizon]
        keep = np.ones(n, bool) if limit is None else end_dates <= limit
        if not keep.any():
            continue
        idx = torch.from_numpy(np.flatnonzero(keep))
        w = unfold_windows(s.values, lookback, horizon)[idx]  # [n, L + H, F]
        last_y = w[:, lookback - 1, 0:1]  # [n, 1]
        parts.append(
            WindowSet(
                past=w[:, :lookback, :],
                future=w[:, lookback:, w.shape[2] - n_calendar :],
                target=w[:, lookback:, 0] - last_y,
                series_index=torch.full((len(idx),), s.series_index, dtype=torch.int64),
                origin_index=origin[keep],
                origin_date=s.dates[origin[keep]],
                target_end_date=end_dates[keep],
            )
        )
    if not parts:
        raise ValueError(
            f"no complete window: every series needs at least lookback + horizon = "
            f"{lookback + horizon} rows on or before the cut-off {cutoff}"
        )
    return WindowSet(
        past=torch.cat([p.past for p in parts]).contiguous(),
        future=torch.cat([p.future for p in parts]).contiguous(),
        target=torch.cat([p.target for p in parts]).contiguous(),
        series_index=torch.cat([p.series_index for p in parts]),
        origin_index=np.concatenate([p.origin_index for p in parts]),
        origin_date=np.concatenate([p.origin_date for p in parts]),
        target_end_date=np.concatenate([p.target_end_date for p in parts]),
    )


def split_windows(windows: WindowSet, val_fraction: float) -> tuple[WindowSet, WindowSet]:
    """Time-ordered split: validation = windows whose origin is in the last ``val_fraction``
    of distinct origin dates; training = windows whose targets all end on or before the first
    validation origin, so no training target reaches into the validation period. Windows in
    between (origin before, targets after) are dropped.
    """
    dates = np.unique(windows.origin_date)
    n_val = max(1, int(round(len(dates) * val_fraction)))
    if len(dates) <= n_val:
        raise ValueError(f"too few origin dates ({len(dates)}) for a train/validation split")
    val_start = dates[-n_val]
    train = windows.subset(windows.target_end_date <= val_start)
    val = windows.subset(windows.origin_date >= val_start)
    if len(train) == 0:
        raise ValueError(
            "no training window ends before the validation period: more history needed"
        )
    return train, val
