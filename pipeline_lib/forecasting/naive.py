"""The naive family of baselines: naive (the last value) and seasonal naive (the value a week
before each target: 5 rows for business days, 7 for ``"D"``), with the split-conformal bands
of :mod:`pipeline_lib.forecasting.baselines` from their own errors before each origin.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from pipeline_lib.evaluation.windows import origin_windows, rolling_origins
from pipeline_lib.features.calendar import weekly_season
from pipeline_lib.forecasting.baselines import Baseline, SeriesHistory, apply_bands


def _error(actual: np.ndarray, point: np.ndarray, use_log: bool) -> np.ndarray:
    if use_log:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(actual) - np.log(point)
    return actual - point


class NaiveFamily(Baseline):
    """Naive-type baselines: the point is a function of the last ``lookback`` values."""

    @abstractmethod
    def _lookback(self, frequency: str) -> int: ...

    @abstractmethod
    def _point(self, past: np.ndarray, horizon: int) -> np.ndarray:
        """[N, lookback] -> [N, horizon]"""

    def _forecast(
        self, s: SeriesHistory, origins: np.ndarray, horizon: int, frequency: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lookback = self._lookback(frequency)
        n = len(origins)
        out = np.full((3, n, horizon), np.nan)
        ok = origins >= lookback - 1
        if not ok.any():
            return out[0], out[1], out[2]
        past, _ = origin_windows(s.y, origins[ok], lookback, 0)  # views [N, L]
        point = self._point(past, horizon)
        # calibration: every origin whose targets are observed; vectorised over views
        cal = rolling_origins(len(s.y), len(s.y), 1, min_train=lookback, horizon=horizon)
        cal_past, cal_target = origin_windows(s.y, cal, lookback, horizon)
        cal_point = self._point(cal_past, horizon)
        lo, hi = np.full((2, ok.sum(), horizon), np.nan)
        positive = np.minimum.accumulate(s.y) > 0  # [T], series positive so far
        for use_log in (True, False):
            pick = positive[origins[ok]] == use_log
            if pick.any():
                errors = _error(cal_target, cal_point, use_log)
                lo[pick], hi[pick] = self._bands(errors, cal + horizon, origins[ok][pick])
        out[:, ok] = apply_bands(point, lo, hi, positive[origins[ok]])
        return out[0], out[1], out[2]


class Naive(NaiveFamily):
    """The last observed value, for every horizon."""

    name = "naive"

    def _lookback(self, frequency: str) -> int:
        return 1

    def _point(self, past: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(past[:, -1:], horizon, axis=1)


class SeasonalNaive(NaiveFamily):
    """The value one week (``season`` rows: 5 for business days, 7 for ``"D"``) before each target,
    repeating the last observed week beyond one season."""

    name = "seasonal_naive"

    def __init__(self, season: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.season = season

    def _lookback(self, frequency: str) -> int:
        return self.season or weekly_season(frequency)

    def _point(self, past: np.ndarray, horizon: int) -> np.ndarray:
        m = past.shape[1]
        return past[:, np.arange(horizon) % m]


BASELINES: dict[str, type[Baseline]] = {b.name: b for b in (Naive, SeasonalNaive)}
