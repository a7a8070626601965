"""The windows' containers: :class:`SeriesArray` (one series' rows, ready for windowing) and
:class:`WindowSet` (the windows of many series, gathered on demand from one copy of their
rows), and :func:`local_scale`, each window's own asinh scale. What a window holds, and how the
windows are built from the features, is :mod:`pipeline_lib.forecasting.model.windows`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from pipeline_lib.features.spec import FeatureSet

NO_LEADS = "the series have no lead columns, but the model has future covariates"


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
            raise ValueError(NO_LEADS)
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
