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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.errors import NotEnoughHistory
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.model.scaling import SeriesScalers
from pipeline_lib.forecasting.model.window_set import NO_LEADS, SeriesArray, WindowSet

if TYPE_CHECKING:
    from pipeline_lib.forecasting.model.trained import TrainedModel

NO_COVARIATES = FeatureSet()  # the built-in inputs only (a model saved before covariates)


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
                        raise ValueError(NO_LEADS)
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
