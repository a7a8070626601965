"""The LEAR-style linear baseline: per-series direct ridge regressions of the h-step change on
lags, the weekday and the covariates (known-ahead leads included), refitted at every origin,
with split-conformal bands (the interface and the bands: :mod:`pipeline_lib.forecasting.baselines`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline_lib import schema
from pipeline_lib.evaluation.windows import origin_windows, rolling_origins
from pipeline_lib.forecasting.baselines import Baseline, SeriesHistory
from pipeline_lib.forecasting.origin_cache import OriginStore, prefix_fingerprints, settings_digest

LAGS = (1, 2, 7)
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
# Prices read on an asinh scale (once one is <= 0) are centred and scaled by the median and the
# MAD of the newest ASINH_ROWS prices up to the origin (LEAR's shortest calibration window,
# 8 weeks). Chosen on the electricity sample's 51 nights (h=1 median rMAE of the linear model,
# then over h=1-14): raw prices 0.446 / 0.838; scaled by 14 rows 0.416 / 0.836, 28 0.396 /
# 0.831, 56 0.393 / 0.829, 91 0.394 / 0.830, 120 0.397 / 0.834, 182 0.410 / 0.841, 365 0.407 /
# 0.854, every row 0.433 / 0.849 (bench/README.md)
ASINH_ROWS = 56
# Built-in covariates of the origin row; dow_sin/dow_cos are left out, the weekday dummies
# span them.
BUILTIN_COVARIATES = [*schema.PAST_FEATURES, "month_sin", "month_cos"]


class LinearLags(Baseline):
    """LEAR-style direct ridge regressions of the h-step change of ``z``, one per horizon:
    ``z`` is the log price while every price up to the origin is positive, else the
    variance-stabilised ``asinh((y - m) / s)``, ``m`` and ``s`` the median and the (normal-
    consistent) median absolute deviation of the newest ``asinh_rows`` prices up to the origin
    (Uniejewski, Weron and Ziel 2018: spikes and negative prices weigh less in the fit).

    Fitted **per series** (series differ in level, volatility and covariates; a per-series fit
    needs no cross-series scaling and one series' history can never move another's forecast),
    refitted at each origin ``o`` from rows ``0..o``. Inputs of origin ``o`` (all read on row
    ``o``, or before it for the lags):

    - the level ``z_o`` and the differences ``z_o - z_{o-k}`` for ``k`` in ``lags``, so the
      ridge penalty shrinks towards the naive forecast;
    - 7 weekday dummies of the origin date (a direct regression per horizon then learns the
      target weekday's effect: for a daily series the origin's weekday fixes the target's);
    - the built-in covariates of row ``o`` present in the frame (``schema.PAST_FEATURES`` and
      the month encodings);
    - the declared covariates of ``feature_set`` on row ``o``: past covariates, the future
      covariates' own-date values and their lead columns ``name@1..name@k`` (the value for
      each target date as known on ``o``: the known-ahead inputs of the regression of
      horizon ``h``, e.g. day-ahead load).

    A missing value is imputed with its training mean *and* flagged by a missing indicator
    (``SimpleImputer(add_indicator=True)``: an unknown lead is told, never silently made up;
    a column never missing in training has a constant indicator, which the ridge cannot use).
    Imputer, ``StandardScaler`` and ridge are fitted on the training rows only. Bands: see the
    module doc (errors of a model fitted before the calibration split).

    ``lags``: positive lags of the differences. ``alpha``: the ridge penalty on the
    standardised inputs; a sequence is a grid searched per horizon by efficient leave-one-out
    (``RidgeCV``) on the rows of the calibration fit, whose penalties the model of the origin,
    fitted on all its rows, then reuses (one search per origin, and the bands measure that very
    model). ``min_train``: fewest training rows. ``asinh_rows``: the prices that centre and
    scale the asinh scale (0: every row up to the origin).
    """

    name = "linear"

    def __init__(
        self,
        lags: Sequence[int] = LAGS,
        alpha: float | Sequence[float] = ALPHAS,
        min_train: int = 30,
        fit_rows: Sequence[int] = (0,),
        asinh_rows: int = ASINH_ROWS,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        windows = tuple(sorted({int(w) for w in fit_rows}))
        if not windows or any(0 < w < min_train or w < 0 for w in windows):
            raise ValueError(f"fit_rows must be 0 (every row) or >= {min_train}, got {fit_rows}")
        self.fit_rows = windows
        lags = tuple(sorted({int(k) for k in lags}))
        if not lags or lags[0] < 1:
            raise ValueError(f"lags must be positive integers, got {lags}")
        alphas = (alpha,) if isinstance(alpha, int | float) else tuple(alpha)
        if not alphas or min(alphas) <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        if asinh_rows < 0:
            raise ValueError(f"asinh_rows must be >= 0, got {asinh_rows}")
        self.asinh_rows = int(asinh_rows)
        self.lags = lags
        self.alpha = alphas[0] if isinstance(alpha, int | float) else alphas
        self.min_train = min_train

    def _covariate_columns(self, frame: pd.DataFrame) -> list[str]:
        """Built-in covariates present in the frame, then every declared covariate column."""
        declared = [*self.feature_set.covariate_names, *self.feature_set.lead_columns]
        missing = [c for c in declared if c not in frame.columns]
        if missing:
            raise ValueError(f"history lacks the declared covariate columns {missing}")
        return [c for c in BUILTIN_COVARIATES if c in frame.columns] + declared

    def _forecast(
        self, s: SeriesHistory, origins: np.ndarray, horizon: int, frequency: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = np.full((3, len(origins), horizon), np.nan)
        store = self._store(s, horizon)
        # the estimators' parameters are checked once, in __init__, not at each of 2 N fits
        with config_context(skip_parameter_validation=True):
            for i, origin in enumerate(origins):
                result = store.get(int(origin))
                if result is None:
                    result = self._forecast_one(s, int(origin), horizon)
                    result = np.full((3, horizon), np.nan) if result is None else result
                    store.put(int(origin), result)
                out[:, i] = result
        store.save(origins)
        return out[0], out[1], out[2]

    def _store(self, s: SeriesHistory, horizon: int) -> OriginStore:
        """The series' per-origin forecasts kept from earlier nights (:mod:`origin_cache`)."""
        if not self.cache:
            return OriginStore(None, np.zeros(len(s.y), np.uint64))
        digest = settings_digest(
            type(self).__name__, self.lags, self.alpha, self.min_train, self.quantiles,
            self.calibration_window, self.min_calibration, self.covariate_columns, horizon,
            *(() if self.fit_rows == (0,) else (("fit_rows", self.fit_rows),)),
            ("asinh_rows", self.asinh_rows),
        )  # fmt: skip
        sid = self._ids.get(id(s), "series")
        url = f"{self.cache.rstrip('/')}/{self.name}/{digest}/{sid}.npz"
        return OriginStore(url, prefix_fingerprints(s.dates, s.y, s.covariates))

    def _forecast_one(self, s: SeriesHistory, origin: int, horizon: int) -> np.ndarray | None:
        y = s.y[: origin + 1]  # nothing after the origin from here on
        covariates = s.covariates[: origin + 1]
        weekday = _weekday(s.dates[: origin + 1])
        z, inverse = price_scale(y, self.asinh_rows)
        train = rolling_origins(len(z), len(z), 1, min_train=self.lags[-1] + 1, horizon=horizon)
        n_cal = min(self.calibration_window, len(train) // 2)
        if n_cal < self.min_calibration or len(train) - n_cal - horizon < self.min_train:
            return None
        x, target = self._design(z, weekday, covariates, train, horizon)  # [N, F], [N, H]
        x_now, _ = self._design(z, weekday, covariates, np.array([origin]), 0)  # [1, F]
        cal_start = len(train) - n_cal
        before = np.flatnonzero(train <= train[cal_start] - horizon)  # targets before the split
        calibrated = np.zeros_like(target[cal_start:])  # [n_cal, H]
        change = np.zeros((1, horizon))
        for window in self.fit_rows:
            fit = before[-window:] if window else before
            calibrate = self._model(self.alpha).fit(x[fit], target[fit])
            calibrated += calibrate.predict(x[cal_start:])
            alpha = getattr(calibrate[-1], "alpha_", self.alpha)  # [H] when searched
            newest = slice(-window if window else None, None)  # of all the rows
            model = self._model(alpha).fit(x[newest], target[newest])  # the calibrated penalty
            change += model.predict(x_now).reshape(1, horizon)
        errors = target[cal_start:] - calibrated / len(self.fit_rows)  # [n_cal, H]
        lo, hi = np.quantile(errors, [self.quantiles[0], self.quantiles[2]], axis=0)
        change /= len(self.fit_rows)  # [1, H]
        level = z[origin] + change[0]  # [H]
        point = inverse(level)  # the scales are monotone: the bands' order is kept
        lower, upper = inverse(level + lo), inverse(level + hi)
        return np.stack([point, np.minimum(lower, point), np.maximum(upper, point)])

    def _design(
        self,
        z: np.ndarray,
        weekday: np.ndarray,
        covariates: np.ndarray,
        origins: np.ndarray,
        horizon: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inputs [N, 1 + lags + 7 + C] and targets ``z[o + h] - z[o]`` [N, H] of each origin."""
        past, _ = origin_windows(z, origins, self.lags[-1] + 1, 0)  # [N, max lag + 1]
        level = past[:, -1:]  # [N, 1]
        lagged = past[:, [-1 - k for k in self.lags]]  # [N, lags]
        dummies = np.eye(7)[weekday[origins]]  # [N, 7]
        x = np.concatenate([level, level - lagged, dummies, covariates[origins]], axis=1)
        if not horizon:
            return x, np.empty((len(origins), 0))
        _, ahead = origin_windows(z, origins, 1, horizon)  # [N, H]
        return x, ahead - level

    @staticmethod
    def _model(alpha: float | tuple[float, ...] | np.ndarray) -> Pipeline:
        """Impute (with indicators), standardise, ridge: ``RidgeCV`` over a grid ``alpha``
        (a tuple), else ``Ridge`` with ``alpha`` (a number, or one per horizon [H])."""
        ridge = (
            RidgeCV(alphas=alpha, alpha_per_target=True)
            if isinstance(alpha, tuple)
            else Ridge(alpha=alpha)
        )
        return make_pipeline(
            SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            ridge,
        )


def price_scale(
    y: np.ndarray, asinh_rows: int = ASINH_ROWS
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The scale ``z`` [T] the linear model reads prices [T] on, and its inverse: ``log y``
    while every price is positive, else ``asinh((y - m) / s)`` with the median ``m`` and the
    normal-consistent MAD ``s`` of the newest ``asinh_rows`` prices (0: all; ``s`` falls back
    to their standard deviation, then 1, when the prices there do not vary)."""
    if np.all(y > 0):
        return np.log(y), np.exp
    recent = y[-asinh_rows:] if asinh_rows else y
    m = float(np.median(recent))
    s = float(np.median(np.abs(recent - m))) * 1.4826 or float(np.std(recent)) or 1.0
    return np.arcsinh((y - m) / s), lambda z: np.sinh(z) * s + m


def _weekday(dates: np.ndarray) -> np.ndarray:
    """Weekday (Monday 0) of datetime64 dates [T] -> int [T]."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    return (days + 3) % 7  # 1970-01-01 was a Thursday
