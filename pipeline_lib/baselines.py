"""Baseline forecasters: naive, seasonal naive (weekly) and a LEAR-style linear model (Ridge).

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
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline_lib import schema
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.evaluation.windows import origin_windows, rolling_origins
from pipeline_lib.features.calendar import check_frequency, dates_ahead, weekly_season
from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.model.forecast import FORECAST_COLUMNS
from pipeline_lib.origin_cache import OriginStore, prefix_fingerprints, settings_digest


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
        if frame.duplicated([schema.SERIES_ID, schema.DATE]).any():
            raise ValueError("history has more than one row for a (series_id, date)")
        self.series = {
            str(sid): SeriesHistory(
                dates=pd.to_datetime(part[schema.DATE]).to_numpy().astype("datetime64[ns]"),
                y=part[schema.Y].to_numpy(np.float64, copy=True),  # not a view of the part
                covariates=part[self.covariate_columns].to_numpy(np.float64),
            )
            for sid, part in frame.groupby(schema.SERIES_ID, sort=True)
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
        rows dated on or before it, exactly as :meth:`predict` on that date."""
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
            parts.append(_frame(sid, pd.DatetimeIndex(dates[ok]), yhat, lo, hi, freq, self.name))
        return _concat(parts)

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
        for i, k in enumerate(counts):
            recent = errors[max(0, k - self.calibration_window) : k]
            if len(recent) >= self.min_calibration:
                lo[i], hi[i] = np.quantile(recent, [self.quantiles[0], self.quantiles[2]], axis=0)
        return lo, hi


class _NaiveFamily(Baseline):
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
        out[:, ok] = _apply_bands(point, lo, hi, positive[origins[ok]])
        return out[0], out[1], out[2]


class Naive(_NaiveFamily):
    """The last observed value, for every horizon."""

    name = "naive"

    def _lookback(self, frequency: str) -> int:
        return 1

    def _point(self, past: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(past[:, -1:], horizon, axis=1)


class SeasonalNaive(_NaiveFamily):
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


LAGS = (1, 2, 7)
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
# Built-in covariates of the origin row; dow_sin/dow_cos are left out, the weekday dummies
# span them.
BUILTIN_COVARIATES = [*schema.PAST_FEATURES, "month_sin", "month_cos"]


class LinearLags(Baseline):
    """LEAR-style direct ridge regressions of the h-step change of ``z`` (log price while the
    series is positive, else the price), one per horizon.

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
    model). ``min_train``: fewest training rows.
    """

    name = "linear"

    def __init__(
        self,
        lags: Sequence[int] = LAGS,
        alpha: float | Sequence[float] = ALPHAS,
        min_train: int = 30,
        fit_rows: Sequence[int] = (0,),
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
        )  # fmt: skip
        sid = self._ids.get(id(s), "series")
        url = f"{self.cache.rstrip('/')}/{self.name}/{digest}/{sid}.npz"
        return OriginStore(url, prefix_fingerprints(s.dates, s.y, s.covariates))

    def _forecast_one(self, s: SeriesHistory, origin: int, horizon: int) -> np.ndarray | None:
        y = s.y[: origin + 1]  # nothing after the origin from here on
        covariates = s.covariates[: origin + 1]
        weekday = _weekday(s.dates[: origin + 1])
        use_log = bool(np.all(y > 0))
        z = np.log(y) if use_log else y
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
        point = _inverse(z[origin] + change, use_log)
        bands = _apply_bands(point, lo[None], hi[None], np.array([use_log]))
        return np.stack(bands)[:, 0]

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


def _weekday(dates: np.ndarray) -> np.ndarray:
    """Weekday (Monday 0) of datetime64 dates [T] -> int [T]."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    return (days + 3) % 7  # 1970-01-01 was a Thursday


BASELINES: dict[str, type[Baseline]] = {b.name: b for b in (Naive, SeasonalNaive, LinearLags)}


def _error(actual: np.ndarray, point: np.ndarray, use_log: bool) -> np.ndarray:
    if use_log:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(actual) - np.log(point)
    return actual - point


def _inverse(z: np.ndarray, use_log: bool) -> np.ndarray:
    return np.exp(z) if use_log else z


def _apply_bands(
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


def _frame(
    series_id: str,
    forecast_dates: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    yhat: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    frequency: str,
    model: str,
) -> pd.DataFrame:
    """Forecast rows of one series, origins [N] x horizons [H]; origins with NaN dropped."""
    keep = ~np.isnan(yhat).any(axis=1) & ~np.isnan(lower).any(axis=1)
    n, horizon = yhat.shape
    days = pd.DatetimeIndex(forecast_dates).normalize().to_numpy()
    targets = dates_ahead(days, horizon, frequency)  # [N, horizon]
    frame = pd.DataFrame(
        {
            schema.SERIES_ID: series_id,
            "forecast_date": np.repeat(pd.DatetimeIndex(forecast_dates).as_unit("ns"), horizon),
            "target_date": targets.reshape(-1),
            "horizon": np.tile(np.arange(1, horizon + 1, dtype=np.int64), n),
            "yhat": yhat.reshape(-1),
            "yhat_lower": lower.reshape(-1),
            "yhat_upper": upper.reshape(-1),
            MODEL: model,
        }
    )
    return frame.loc[np.repeat(keep, horizon)]


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
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
    return pd.concat(parts, ignore_index=True)[columns]
