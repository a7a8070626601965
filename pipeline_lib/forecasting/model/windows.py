"""Vectorised windowing: one float32 tensor [T, F] per series, windows gathered from it on demand.

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
``y_scaled[t] + prediction`` before inverse scaling. With ``asinh_rows`` (``model.asinh_rows``)
each window reads its ``y`` as ``asinh((y - m) / s)`` instead, ``m`` and ``s`` the median and the
MAD of its newest ``asinh_rows`` past steps (:func:`local_scale`), and a forecast is
``sinh(z[t] + prediction) * s + m`` before inverse scaling. Steps are observed rows (trading
days for business-day series), not calendar days. The leads come from the origin row only
(:func:`future_covariate_inputs`, shared with the forecasts), so a window never sees a value
issued after its origin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.errors import NotEnoughHistory
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.model.scaling import SeriesScalers

if TYPE_CHECKING:
    from pipeline_lib.forecasting.model.trained import TrainedModel

NO_COVARIATES = FeatureSet()  # the built-in inputs only (a model saved before covariates)
_NO_LEADS = "the series have no lead columns, but the model has future covariates"


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
    """Windows of many series (N), gathered on demand from ONE copy of their rows.

    ``rows`` [R, F] holds every series' inputs, concatenated; window ``i`` reads rows
    ``start[i] .. start[i] + lookback + horizon - 1`` (its origin is row ``start[i] +
    lookback - 1``). :meth:`batch` builds the tensors of some windows, as the training loop
    asks for them, so memory holds the rows once instead of ``lookback + horizon`` copies of
    them (3 GB of windows at 1,000 series x 3 years). ``past``, ``future`` and ``target``
    build them for every window (small sets: tests, the linear base per series)."""

    rows: torch.Tensor  # [R, F] every series' scaled inputs
    start: torch.Tensor  # [N] int64, the row of each window's first step
    leads: torch.Tensor | None  # [N, n_leads] each origin row's leads (None: no future input)
    lookback: int
    horizon: int
    n_calendar: int
    feature_set: FeatureSet
    series_index: torch.Tensor  # [N] int64
    origin_index: np.ndarray  # [N] row of the origin within its series
    origin_date: np.ndarray  # [N] datetime64[ns]
    target_end_date: np.ndarray  # [N] datetime64[ns], date of the last target
    asinh_rows: int = 0  # past steps that centre and scale y on an asinh scale (0: off)
    # with asinh_rows: one (centre, spread) per series index [S, 2] that every window of the
    # series reads its y on, in place of each window's own (None: each window's own)
    fixed_scale: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.start.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(past [n, lookback, F], future [n, H, F_future], target [n, H])`` of the windows
        ``idx``: the calendar columns of each target step, then the future covariates' leads
        of the origin row and their masks; targets are the change of scaled ``y`` (with
        ``asinh_rows``, of its window's asinh scale) from the origin."""
        steps = self.start[idx].unsqueeze(1) + torch.arange(self.lookback + self.horizon)
        w = self.rows[steps]  # [n, L + H, F], a copy
        if self.asinh_rows and self.fixed_scale is not None:
            scale = self.fixed_scale[self.series_index[idx]]  # [n, 2]
            w[:, :, 0] = torch.asinh((w[:, :, 0] - scale[:, :1]) / scale[:, 1:])
        elif self.asinh_rows:  # the scale of each window's own past steps, never a later one
            w[:, :, 0] = local_scale(w[:, :, 0], self.asinh_rows, self.lookback)[0]
        past = w[:, : self.lookback, :]
        future = w[:, self.lookback :, w.shape[2] - self.n_calendar :]  # [n, H, F_cal]
        if self.feature_set.future_covariates:  # the leads of the origin row, never a later one
            leads = None if self.leads is None else self.leads[idx]
            ahead = future_covariate_inputs(leads, self.feature_set, self.horizon, len(steps))
            future = torch.cat([future, ahead], dim=2)  # [n, H, F_cal + 2C]
        target = w[:, self.lookback :, 0] - w[:, self.lookback - 1, 0:1]
        return past, future, target

    def _every(self, part: int) -> torch.Tensor:
        return self.batch(torch.arange(len(self)))[part]

    @property
    def past(self) -> torch.Tensor:
        return self._every(0)

    @property
    def future(self) -> torch.Tensor:
        return self._every(1)

    @property
    def target(self) -> torch.Tensor:
        return self._every(2)

    def on_newest_scale(self) -> WindowSet:
        """These windows with every series' ``y`` read on one asinh scale: the scale of its
        newest ``asinh_rows`` rows here (:func:`local_scale`), the one a forecast from the
        newest row reads (its window's own). Without ``asinh_rows``, the windows as they are."""
        if not self.asinh_rows or len(self) == 0:
            return self
        n_series = int(self.series_index.max()) + 1
        scale = torch.tensor([[0.0, 1.0]]).repeat(n_series, 1)
        present = self.series_index.unique()
        last_start = torch.zeros(n_series, dtype=self.start.dtype).scatter_reduce(
            0, self.series_index, self.start, "amax", include_self=False
        )
        end = last_start[present] + self.lookback + self.horizon - 1  # each series' newest row
        newest = self.rows[end.unsqueeze(1) + torch.arange(1 - self.asinh_rows, 1), 0]
        _, centre, spread = local_scale(newest, self.asinh_rows)  # [P, 1] each
        scale[present] = torch.cat([centre, spread], dim=1)
        return replace(self, fixed_scale=scale)

    def subset(self, mask: np.ndarray) -> WindowSet:
        """The windows where the boolean ``mask`` [N] is true (the rows are shared)."""
        idx = torch.from_numpy(np.flatnonzero(mask))
        return replace(
            self,
            start=self.start[idx],
            leads=None if self.leads is None else self.leads[idx],
            series_index=self.series_index[idx],
            origin_index=self.origin_index[mask],
            origin_date=self.origin_date[mask],
            target_end_date=self.target_end_date[mask],
        )


def local_scale(
    y: torch.Tensor, rows: int, past: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each window's ``y`` [n, T] on its own asinh scale: ``(asinh((y - centre) / spread),
    centre, spread)``, the centre and spread [n, 1] from the newest ``rows`` of its first
    ``past`` steps (None: all T; the steps after are its targets): their median and
    normal-consistent median absolute deviation, the spread falling back to their standard
    deviation, then 1, where the prices there do not vary. The one place the windows of
    training and of the forecasts get their scale. The asinh scale is the variance-stabilising
    transform of electricity price forecasting (Uniejewski, Weron and Ziel 2018), as the linear
    baseline reads prices that reach zero
    (:func:`pipeline_lib.forecasting.linear_baseline.price_scale`)."""
    end = y.shape[1] if past is None else past
    recent = y[:, end - rows : end]
    centre = torch.quantile(recent, 0.5, dim=1, keepdim=True)
    mad = 1.4826 * torch.quantile((recent - centre).abs(), 0.5, dim=1, keepdim=True)
    std = recent.std(dim=1, keepdim=True, unbiased=False)
    tiny = 1e-6
    spread = torch.where(mad > tiny, mad, torch.where(std > tiny, std, torch.ones_like(std)))
    return torch.asinh((y - centre) / spread), centre, spread


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
    if leads is None:
        if covariates:
            raise ValueError(_NO_LEADS)
        return torch.cat([values, known], dim=2)  # [n, H, 0]
    column = 0
    for i, c in enumerate(covariates):
        for h in range(1, min(c.known_ahead, horizon) + 1):
            lead = leads[:, column + h - 1]  # [n]
            present = ~torch.isnan(lead)
            values[:, h - 1, i] = torch.where(present, lead, torch.zeros_like(lead))
            known[:, h - 1, i] = present.to(values.dtype)
        column += c.known_ahead
    return torch.cat([values, known], dim=2)  # [n, H, 2C]


def make_windows(
    series: list[SeriesArray],
    lookback: int,
    horizon: int,
    n_calendar: int,
    cutoff: dt.date | None = None,
    feature_set: FeatureSet = NO_COVARIATES,
    asinh_rows: int = 0,
) -> WindowSet:
    """Windows of every series whose targets all fall on or before ``cutoff`` (if given).

    The last ``n_calendar`` input columns are the calendar (known-future) features; the future
    covariates of ``feature_set`` join them from each origin's leads
    (:func:`future_covariate_inputs`). Nothing is copied per window (see :class:`WindowSet`).
    ``asinh_rows``: see :class:`WindowSet` (``model.asinh_rows``).
    """
    limit = None if cutoff is None else np.datetime64(pd.Timestamp(cutoff).as_unit("ns"))
    blocks, starts, leads, index, origins, origin_dates, end_dates = [], [], [], [], [], [], []
    offset = 0
    for s in series:
        n = s.values.shape[0] - lookback - horizon + 1
        if n > 0:
            origin = np.arange(n) + lookback - 1
            ends = s.dates[origin + horizon]
            keep = np.ones(n, bool) if limit is None else ends <= limit
            if keep.any():
                kept = origin[keep]
                blocks.append(s.values)
                starts.append(torch.from_numpy(offset + kept - (lookback - 1)))
                if feature_set.future_covariates:
                    if s.leads is None:
                        raise ValueError(_NO_LEADS)
                    leads.append(s.leads[torch.from_numpy(kept)])
                index.append(torch.full((len(kept),), s.series_index, dtype=torch.int64))
                origins.append(kept)
                origin_dates.append(s.dates[kept])
                end_dates.append(ends[keep])
                offset += s.values.shape[0]
    if not blocks:
        raise NotEnoughHistory(
            f"no complete window to train on: every series needs at least lookback + horizon "
            f"= {lookback + horizon} rows on or before the cut-off {cutoff}"
        )
    return WindowSet(
        rows=torch.cat(blocks),
        start=torch.cat(starts),
        leads=torch.cat(leads) if leads else None,
        lookback=lookback,
        horizon=horizon,
        n_calendar=n_calendar,
        feature_set=feature_set,
        series_index=torch.cat(index),
        origin_index=np.concatenate(origins),
        origin_date=np.concatenate(origin_dates),
        target_end_date=np.concatenate(end_dates),
        asinh_rows=asinh_rows,
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


def model_windows(trained: TrainedModel, frame: pd.DataFrame, cutoff: dt.date) -> WindowSet:
    """All windows of ``frame`` for ``trained`` (its series, scalers, calendar and covariate
    inputs, look-back, horizon and asinh scale), targets up to ``cutoff``."""
    fs = trained.feature_set
    arrays = series_arrays(
        frame, trained.scalers, trained.series_ids, trained.calendar_features, fs.lead_columns
    )
    n_cal = len(trained.calendar_features)
    return make_windows(
        arrays, trained.lookback, trained.horizon, n_cal, cutoff, fs, trained.asinh_rows
    )
