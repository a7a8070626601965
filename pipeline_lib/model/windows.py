"""Vectorised windowing: one float32 tensor [T, F] per series, windows as ``unfold`` views.

Inputs per time step are the scaled ``y`` (column 0), the scaled past columns (built-in
features, past covariates, each future covariate's own-date value) and the calendar features.
Each series also keeps its scaled lead columns [T, n_leads] (NaN: not known), read at origins
only. A window with origin ``t`` (the last observed step) holds:

- ``past``: steps ``t - lookback + 1 .. t``, all columns   [lookback, F]
- ``future``: per target step ``t + h`` (h = 1..H), the calendar columns of that step, then
  for each future covariate its lead ``c@h`` read from row ``t`` (0 when h > known_ahead or
  unknown), then one availability mask per future covariate (1 known, 0 not) [H, F_future]
- ``target``: scaled ``y`` at ``t + 1 .. t + H`` minus scaled ``y`` at ``t`` [H]

so the model predicts the change from the last observed value, and a forecast is
``y_scaled[t] + prediction`` before inverse scaling. Steps are observed rows (trading days for
business-day series), not calendar days. The leads come from the origin row only
(:func:`future_covariate_inputs`, shared with the forecasts), so a window never sees a value
issued after its origin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.errors import NotEnoughHistory
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.model.scaling import SeriesScalers

NO_COVARIATES = FeatureSet()  # the built-in inputs only (a model saved before covariates)


@dataclass(frozen=True)
class SeriesArray:
    """One series ready for windowing: its embedding index, dates [T], inputs [T, F] and the
    scaled lead columns [T, n_leads] (NaN where not known; ``None``: no future covariate)."""

    series_index: int
    dates: np.ndarray
    values: torch.Tensor
    leads: torch.Tensor | None = None


@dataclass(frozen=True)
class WindowSet:
    """Windows of many series, concatenated along the first axis (N windows)."""

    past: torch.Tensor  # [N, lookback, F]
    future: torch.Tensor  # [N, H, F_future] calendar, covariate leads, their masks
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


def require_columns(features: pd.DataFrame, feature_set: FeatureSet) -> None:
    """Raise ``ValueError`` naming the columns of ``feature_set`` that ``features`` lacks."""
    missing = [c for c in feature_set.columns if c not in features.columns]
    if missing:
        raise ValueError(f"the features lack the columns {missing} of the model's inputs")


def series_arrays(
    features: pd.DataFrame,
    scalers: SeriesScalers,
    series_ids: list[str],
    calendar_columns: list[str],
    lead_columns: list[str] | tuple[str, ...] = (),
) -> list[SeriesArray]:
    """Scale ``features`` and split them into one :class:`SeriesArray` per known series.

    Input columns are ``scalers.columns`` except the ``lead_columns`` (``y`` first), then
    ``calendar_columns``; the lead columns (scaled too) go to ``SeriesArray.leads``, NaN where
    the frame has no value. Rows without a target are dropped; series not in ``series_ids``
    are skipped.
    """
    frame = features.loc[
        features[schema.SERIES_ID].isin(series_ids) & features[schema.Y].notna()
    ].sort_values([schema.SERIES_ID, schema.DATE])
    scaled = scalers.transform(frame)
    is_lead = np.isin(np.array(scalers.columns, dtype=object), list(lead_columns))
    if is_lead.sum() != len(lead_columns):
        raise ValueError(f"lead columns {list(lead_columns)} are not all in the scalers' columns")
    calendar = np.nan_to_num(frame[calendar_columns].to_numpy(dtype=np.float32))
    values = torch.from_numpy(np.concatenate([scaled[:, ~is_lead], calendar], axis=1))
    leads = None
    if len(lead_columns):
        order = [scalers.columns.index(c) for c in lead_columns]
        known = frame[list(lead_columns)].notna().to_numpy()
        leads = torch.from_numpy(np.where(known, scaled[:, order], np.float32(np.nan)))
    dates = frame[schema.DATE].to_numpy().astype("datetime64[ns]")
    ids = frame[schema.SERIES_ID].to_numpy()
    out = []
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(ids)], strict=True):
        if stop > start:
            out.append(
                SeriesArray(
                    series_ids.index(ids[start]),
                    dates[start:stop],
                    values[start:stop],
                    None if leads is None else leads[start:stop],
                )
            )
    return out


def future_covariate_inputs(
    leads: torch.Tensor | None, feature_set: FeatureSet, horizon: int, n: int
) -> torch.Tensor:
    """The future covariates' inputs of ``n`` origins: [n, H, 2 * n_future_covariates].

    ``leads`` [n, n_leads] are the scaled lead columns (``feature_set.lead_columns`` order) of
    each ORIGIN row, NaN where unknown. Step h holds, for each future covariate ``c`` in order,
    ``c@h`` when h <= ``c.known_ahead`` and known, else 0; then one mask per covariate: 1 where
    that value is known, else 0. The only place leads become inputs (windows and forecasts).
    """
    covariates = feature_set.future_covariates
    values = torch.zeros(n, horizon, len(covariates))  # [n, H, C]
    known = torch.zeros(n, horizon, len(covariates))  # [n, H, C]
    if covariates and leads is None:
        raise ValueError("the series have no lead columns, but the model has future covariates")
    column = 0
    for i, c in enumerate(covariates):
        for h in range(1, min(c.known_ahead, horizon) + 1):
            lead = leads[:, column + h - 1]  # [n]
            present = ~torch.isnan(lead)
            values[:, h - 1, i] = torch.where(present, lead, torch.zeros_like(lead))
            known[:, h - 1, i] = present.to(values.dtype)
        column += c.known_ahead
    return torch.cat([values, known], dim=2)  # [n, H, 2C]


def unfold_windows(values: torch.Tensor, lookback: int, horizon: int) -> torch.Tensor:
    """All windows of ``lookback + horizon`` steps as a view: [T, F] -> [N, lookback + H, F]."""
    return values.unfold(0, lookback + horizon, 1).permute(0, 2, 1)  # [N, L + H, F]


def make_windows(
    series: list[SeriesArray],
    lookback: int,
    horizon: int,
    n_calendar: int,
    cutoff: dt.date | None = None,
    feature_set: FeatureSet = NO_COVARIATES,
) -> WindowSet:
    """Windows of every series whose targets all fall on or before ``cutoff`` (if given).

    The last ``n_calendar`` input columns are the calendar (known-future) features; the future
    covariates of ``feature_set`` join them from each origin's leads
    (:func:`future_covariate_inputs`).
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
        future = w[:, lookback:, w.shape[2] - n_calendar :]  # [n, H, F_cal]
        if feature_set.future_covariates:  # the leads of the origin row, never a later one
            leads = None if s.leads is None else s.leads[torch.from_numpy(origin[keep])]
            ahead = future_covariate_inputs(leads, feature_set, horizon, len(idx))  # [n, H, 2C]
            future = torch.cat([future, ahead], dim=2)  # [n, H, F_cal + 2C]
        parts.append(
            WindowSet(
                past=w[:, :lookback, :],
                future=future,
                target=w[:, lookback:, 0] - last_y,
                series_index=torch.full((len(idx),), s.series_index, dtype=torch.int64),
                origin_index=origin[keep],
                origin_date=s.dates[origin[keep]],
                target_end_date=end_dates[keep],
            )
        )
    if not parts:
        raise NotEnoughHistory(
            f"no complete window to train on: every series needs at least lookback + horizon "
            f"= {lookback + horizon} rows on or before the cut-off {cutoff}"
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
        raise NotEnoughHistory(
            f"too few origin dates ({len(dates)}) to train on for a train/validation split"
        )
    val_start = dates[-n_val]
    train = windows.subset(windows.target_end_date <= val_start)
    val = windows.subset(windows.origin_date >= val_start)
    if len(train) == 0:
        raise NotEnoughHistory("no training window ends before the validation period")
    return train, val
