"""Baseline forecasters: the interface and what every baseline shares (the split-conformal
bands, the forecast rows); naive and seasonal naive are :mod:`pipeline_lib.forecasting.naive`,
the LEAR-style linear model (Ridge) :mod:`pipeline_lib.forecasting.linear_baseline`, the
statistical ones :mod:`pipeline_lib.forecasting.statistical`.

One interface: ``Baseline(..., feature_set=...)`` names the declared covariates a baseline may
read (:class:`~pipeline_lib.features.spec.FeatureSet`; the naive family and the statistical
baselines read ``y`` only); ``fit(history)`` stores the long history (``series_id, date, y``
and the covariate columns); ``predict(as_of, horizon, frequency)`` returns forecasts in the
production shape (``FORECAST_COLUMNS`` plus ``model``, the baseline's name) for every series
with enough rows dated on or before ``as_of``; ``backtest(last_n, step, horizon, frequency)``
returns the forecasts of the last ``last_n`` origins of every series, ``step`` rows apart, each
made exactly as ``predict`` would on its forecast date.

No leakage: a forecast from origin ``o`` (the last row on or before the forecast date) uses rows
``0..o`` only, for its point, its model fit and its bands. Steps are rows (observations): the
weekly season is 5 rows for a business-day frequency (``"B"`` or an exchange calendar code such
as ``"XNYS"``) and 7 for ``"D"``; target dates come from
``pipeline_lib.features.calendar.dates_ahead``. Everything is deterministic.

Bands (split conformal): the h-step errors of the baseline on its own history before the
origin (the last ``calibration_window`` origins whose targets are all observed by the origin;
for the linear model, errors of a model fitted on the rows before that calibration split) give
empirical quantiles per horizon, so bands widen with the horizon. Errors are log ratios while
the series has been positive up to the origin (bands scale with the price), else differences.
``yhat_lower``/``yhat_upper`` are the point plus the ``quantiles[0]``/``quantiles[2]`` error
quantiles, clipped so that lower <= yhat <= upper. A series with fewer than ``min_calibration``
such errors gets no forecast.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Self

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from pipeline_lib import schema
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.evaluation.windows import rolling_origins
from pipeline_lib.features.calendar import check_frequency, dates_ahead
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.blas import blas_on_one_thread
from pipeline_lib.schema import FORECAST_COLUMNS


@dataclass(frozen=True)
class SeriesHistory:
    """One series in date order: dates [T], y [T] and covariates [T, C] (NaN where unknown)."""

    dates: np.ndarray
    y: np.ndarray
    covariates: np.ndarray


class Baseline(ABC):
    """A forecaster fitted per series, forecasting ``horizon`` steps from any origin.

    ``quantiles``: levels of (yhat_lower, yhat, yhat_upper), as ``ModelConfig.quantiles``.
    ``calibration_window``: how many recent h-step errors set the bands.
    ``min_calibration``: fewest errors a series needs to be forecast.
    ``feature_set``: the declared covariates (past, and future with their lead columns) the
    features frame carries; only a baseline that reads covariates (:class:`LinearLags`) uses it.
    """

    name: ClassVar[str]

    def __init__(
        self,
        quantiles: Sequence[float] = (0.1, 0.5, 0.9),
        calibration_window: int = 250,
        min_calibration: int = 20,
        feature_set: FeatureSet = FeatureSet(),  # noqa: B008 - frozen, immutable
    ) -> None:
        if len(quantiles) != 3 or not 0 < quantiles[0] < quantiles[1] < quantiles[2] < 1:
            raise ValueError(f"quantiles must be 3 increasing levels in (0, 1), got {quantiles}")
        if min_calibration < 1 or calibration_window < min_calibration:
            raise ValueError("need 1 <= min_calibration <= calibration_window")
        self.quantiles = tuple(float(q) for q in quantiles)
        self.calibration_window = calibration_window
        self.min_calibration = min_calibration
        self.feature_set = feature_set
        self.series: dict[str, SeriesHistory] = {}
        self.covariate_columns: list[str] = []
        self.cache: str | None = None
        self._ids: dict[int, str] = {}  # id(SeriesHistory) -> series id

    def fit(self, history: pd.DataFrame) -> Self:
        """Store ``history`` (long: ``series_id, date, y`` and covariates), one array per series;
        rows without ``y`` are dropped. Models are fitted per origin, from rows up to it."""
        missing = [c for c in (schema.SERIES_ID, schema.DATE, schema.Y) if c not in history]
        if missing:
            raise ValueError(f"history lacks the columns {missing}")
        self.covariate_columns = self._covariate_columns(history)
        columns = [schema.SERIES_ID, schema.DATE, schema.Y, *self.covariate_columns]
        frame = history.loc[history[schema.Y].notna(), columns]  # only what is kept: no copy
        frame = frame.sort_values([schema.SERIES_ID, schema.DATE])  # of the other columns
        # one array per column, each series a slice of it (one pass, no per-series frames)
        ids = frame[schema.SERIES_ID].astype(str).to_numpy()
        dates = pd.to_datetime(frame[schema.DATE]).to_numpy().astype("datetime64[ns]")
        y = frame[schema.Y].to_numpy(np.float64, copy=True)  # not a view of the caller's frame
        covariates = frame[self.covariate_columns].to_numpy(np.float64)
        new = np.ones(len(ids), bool)
        new[1:] = ids[1:] != ids[:-1]
        if ((dates[1:] == dates[:-1]) & ~new[1:]).any():
            raise ValueError("history has more than one row for a (series_id, date)")
        starts = np.flatnonzero(new)
        ends = [*starts[1:], len(ids)]
        self.series = {
            str(ids[a]): SeriesHistory(dates[a:b], y[a:b], covariates[a:b])
            for a, b in zip(starts, ends, strict=True)
        }
        self._ids = {id(s): sid for sid, s in self.series.items()}
        return self

    def cache_in(self, url: str | None) -> Self:
        """Keep what this baseline can reuse on later nights in the folder ``url`` (the models
        folder's ``baselines/``; None: memory only). Only the costly baselines use it."""
        self.cache = url
        return self

    def _covariate_columns(self, frame: pd.DataFrame) -> list[str]:
        """The columns kept per series beyond ``y``: none (a model on ``y`` alone)."""
        return []

    def predict(
        self, as_of: dt.date, horizon: int, frequency: str | Mapping[str, str] = "B"
    ) -> pd.DataFrame:
        """Forecasts of the ``horizon`` dates after ``as_of`` from rows dated on or before it.

        ``frequency``: ``"B"``, ``"D"`` or an exchange calendar code for all series, or a
        mapping by series id (missing series count as ``"B"``)."""
        date = np.array([np.datetime64(pd.Timestamp(as_of).as_unit("ns"))])
        return self.predict_at(dict.fromkeys(self.series, date), horizon, frequency)

    def predict_at(
        self,
        forecast_dates: Mapping[str, np.ndarray],
        horizon: int,
        frequency: str | Mapping[str, str] = "B",
    ) -> pd.DataFrame:
        """Forecasts of many forecast dates per series (datetime64 by series id), each from the
        rows dated on or before it, exactly as :meth:`predict` on that date; their small linear
        algebra on one BLAS thread
        (:func:`~pipeline_lib.forecasting.blas.blas_on_one_thread`)."""
        blas_on_one_thread()
        parts = []
        for sid, dates in forecast_dates.items():
            s = self.series.get(sid)
            if s is None or len(dates) == 0:
                continue
            dates = np.asarray(dates).astype("datetime64[ns]")
            origins = np.searchsorted(s.dates, dates, side="right") - 1
            ok = origins >= 0
            if not ok.any():
                continue
            freq = _frequency(frequency, sid)
            yhat, lo, hi = self._forecast(s, origins[ok], horizon, freq)
            keep = ~np.isnan(yhat).any(axis=1) & ~np.isnan(lo).any(axis=1)  # origins with all
            if keep.any():
                parts.append(_Part(sid, dates[ok][keep], yhat[keep], lo[keep], hi[keep], freq))
        return _frame(parts, horizon, self.name)

    def backtest(
        self,
        last_n: int,
        horizon: int,
        step: int = 1,
        frequency: str | Mapping[str, str] = "B",
    ) -> pd.DataFrame:
        """Forecasts from the last ``last_n`` origins of each series, ``step`` rows apart, whose
        ``horizon`` targets are all observed; forecast_date is the origin's date."""
        dates = {
            sid: s.dates[rolling_origins(len(s.y), last_n, step, min_train=1, horizon=horizon)]
            for sid, s in self.series.items()
        }
        return self.predict_at(dates, horizon, frequency)

    @abstractmethod
    def _forecast(
        self, s: SeriesHistory, origins: np.ndarray, horizon: int, frequency: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point, lower and upper forecasts [N, horizon] of each origin (NaN rows: too little
        history), using rows up to the origin only."""

    def _bands(
        self, errors: np.ndarray, available: np.ndarray, origins: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Error quantiles [N, H] at each origin from the last ``calibration_window`` rows of
        ``errors`` [M, H] whose ``available`` index [M] (last row they use) is <= the origin."""
        n, h = len(origins), errors.shape[1]
        lo, hi = np.full((n, h), np.nan), np.full((n, h), np.nan)
        counts = np.searchsorted(available, origins, side="right")
        levels = [self.quantiles[0], self.quantiles[2]]
        window = self.calibration_window
        full = counts >= window  # a whole window each: their quantiles in one call
        if full.any():
            views = sliding_window_view(errors, window, axis=0)  # [M - window + 1, H, window]
            lo[full], hi[full] = np.quantile(views[counts[full] - window], levels, axis=-1)
        for i in np.flatnonzero(~full & (counts >= self.min_calibration)):
            lo[i], hi[i] = np.quantile(errors[: counts[i]], levels, axis=0)
        return lo, hi


def apply_bands(
    point: np.ndarray, lo: np.ndarray, hi: np.ndarray, use_log: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point [N, H] and its bands from error quantiles [N, H] (log ratios where ``use_log``
    [N]), clipped so that lower <= point <= upper."""
    log = use_log[:, None]
    with np.errstate(over="ignore"):
        lower = np.where(log, point * np.exp(lo), point + lo)
        upper = np.where(log, point * np.exp(hi), point + hi)
    return point, np.minimum(lower, point), np.maximum(upper, point)


def _frequency(frequency: str | Mapping[str, str], series_id: str) -> str:
    freq = frequency if isinstance(frequency, str) else frequency.get(series_id, "B")
    try:
        check_frequency(freq)
    except ValueError as exc:
        raise ValueError(f"{exc} for {series_id}") from None
    return freq


class _Part(NamedTuple):
    """One series' forecasts: forecast dates [N] (datetime64[ns]), point, lower and upper
    [N, H], and its frequency (the target dates follow it)."""

    series_id: str
    dates: np.ndarray
    yhat: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    frequency: str


def _frame(parts: list[_Part], horizon: int, model: str) -> pd.DataFrame:
    """Forecast rows of every series in one frame."""
    columns = [*FORECAST_COLUMNS, MODEL]
    if not parts:
        empty = {c: pd.Series(dtype="float64") for c in columns}
        empty |= {
            "forecast_date": pd.Series(dtype="datetime64[ns]"),
            "target_date": pd.Series(dtype="datetime64[ns]"),
            "horizon": pd.Series(dtype="int64"),
            schema.SERIES_ID: pd.Series(dtype="str"),
            MODEL: pd.Series(dtype="str"),
        }
        return pd.DataFrame(empty)[columns]
    dates = np.concatenate([p.dates for p in parts])
    targets = np.concatenate(  # from each forecast date's day
        [dates_ahead(p.dates.astype("datetime64[D]"), horizon, p.frequency) for p in parts]
    )
    frame = pd.DataFrame(
        {
            schema.SERIES_ID: np.repeat(
                [p.series_id for p in parts], [len(p.dates) * horizon for p in parts]
            ),
            "forecast_date": np.repeat(dates, horizon),
            "target_date": targets.reshape(-1),
            "horizon": np.tile(np.arange(1, horizon + 1, dtype=np.int64), len(dates)),
            "yhat": np.concatenate([p.yhat for p in parts]).reshape(-1),
            "yhat_lower": np.concatenate([p.lower for p in parts]).reshape(-1),
            "yhat_upper": np.concatenate([p.upper for p in parts]).reshape(-1),
            MODEL: model,
        }
    )
    return frame[columns]
