"""Statistical baselines from statsforecast: AutoETS and AutoARIMA, in the baseline interface.

What a user gets from statsforecast in ten lines, fitted the way the product fits its LSTM:
once per night and series, on the rows up to a *fit end* (the backtest's first origin: see
``pipeline_lib.evaluation.backtest``), then applied without refitting to the data up to each
later origin with statsforecast's ``forward`` (the states are updated, the parameters stay). So
every backtest forecast is out of sample, tonight's forecast comes from the very model the
backtest scored, and a night costs one automatic model search per series and model, not one
per origin (``bench/accuracy.py`` prints the cost). Without a fit end, the fit is on the rows up
to the first origin asked for.

- ``ets``: ``AutoETS`` (AICc search over error, trend, damping). Where the series has a weekly
  pattern (:func:`weekly_pattern`: the Theta method's seasonality test on its changes at the
  weekly lag, 5 rows for ``"B"``, 7 for ``"D"``) the search includes the seasonal models, a
  seasonal ETS; elsewhere it is skipped (it costs seven times the non-seasonal search).
- ``arima``: non-seasonal ``AutoARIMA`` (stepwise, with drift where it helps).

The models work on log values while the series has been positive up to its fit end (prices),
so errors and bands are relative; from an origin whose history holds a value <= 0 a log model
gives no forecast. The bands are statsforecast's own prediction intervals at the levels that
map to the configured quantiles (``q < 0.5``: the lower end of the ``100 (1 - 2q)`` % interval;
``q > 0.5``: the upper end of the ``100 (2q - 1)`` % one; 0.5: the mean, the median on the
log scale). A series whose model search fails (too short, constant) gets no forecast and a
warning in the log.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from pipeline_lib.baselines import WEEKLY_SEASON, Baseline, SeriesHistory

log = logging.getLogger(__name__)


def _levels(quantiles: Sequence[float]) -> list[str]:
    """Per quantile, statsforecast's output key: ``mean``, ``lo-<level>`` or ``hi-<level>``
    (a level as statsforecast names it: ``80``, ``80.5``)."""
    out = []
    for q in quantiles:
        level = round(100 * abs(2 * q - 1), 6)
        if level == 0:
            out.append("mean")
        else:
            text = str(int(level)) if float(level).is_integer() else str(level)
            out.append(f"{'lo' if q < 0.5 else 'hi'}-{text}")
    return out


class StatsForecastBaseline(Baseline):
    """A statsforecast model fitted once per series at the fit end, then ``forward``-ed to each
    origin. ``fit_end``: datetime64 of the last row the fit may use (None: the first origin);
    ``min_train``: fewest rows the fit needs."""

    name: ClassVar[str]

    def __init__(self, min_train: int = 60, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.min_train = min_train
        self.fit_end: np.datetime64 | None = None
        self._fitted: dict[tuple[int, int], tuple[Any, bool] | None] = {}

    def fit(self, history: Any) -> Self:
        self._fitted = {}
        return super().fit(history)

    def at(self, fit_end: Any) -> StatsForecastBaseline:
        """Fit on the rows dated on or before ``fit_end`` (a date; None: the first origin)."""
        self.fit_end = None if fit_end is None else np.datetime64(fit_end, "ns")
        return self

    def _make(self, season: int, z: np.ndarray) -> Any:
        """The unfitted statsforecast model for log (or raw) values ``z`` up to the fit end."""
        raise NotImplementedError

    def _model_for(self, s: SeriesHistory, n_fit: int, frequency: str) -> tuple[Any, bool] | None:
        """The model fitted on rows ``0..n_fit-1`` and whether it works on logs (memoised)."""
        key = (id(s), n_fit)
        if key in self._fitted:
            return self._fitted[key]
        y = s.y[:n_fit]
        use_log = bool(np.all(y > 0))
        z = np.log(y) if use_log else y
        model = self._make(WEEKLY_SEASON[frequency], z)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(z)
            result: tuple[Any, bool] | None = (model, use_log)
        except Exception as exc:  # statsforecast raises many kinds on degenerate series
            log.warning("%s: no model for a series of %d rows: %s", self.name, n_fit, exc)
            result = None
        self._fitted[key] = result
        return result

    def _forecast(
        self, s: SeriesHistory, origins: np.ndarray, horizon: int, frequency: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = np.full((3, len(origins), horizon), np.nan)
        if not len(origins):
            return out[0], out[1], out[2]
        if self.fit_end is not None:
            n_fit = int(np.searchsorted(s.dates, self.fit_end, side="right"))
        else:
            n_fit = int(origins.min()) + 1
        if n_fit < self.min_train:
            return out[0], out[1], out[2]
        fitted = self._model_for(s, n_fit, frequency)
        if fitted is None:
            return out[0], out[1], out[2]
        model, use_log = fitted
        keys = _levels(self.quantiles)
        levels = sorted({_number(k.split("-", 1)[1]) for k in keys if k != "mean"})
        for i, origin in enumerate(origins):
            o = int(origin)
            if o + 1 < n_fit:  # before the fit end: in sample
                continue
            y = s.y[: o + 1]
            if use_log and not np.all(y[n_fit:] > 0):
                continue
            z = np.log(y) if use_log else y
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.forward(y=z, h=horizon, level=levels or None)
            for j, key in enumerate(keys):
                out[j, i] = res[key]
        if use_log:
            with np.errstate(over="ignore"):
                out = np.exp(out)
        lower, point, upper = out  # the quantiles' order
        return point, np.minimum(lower, point), np.maximum(upper, point)


def weekly_pattern(z: np.ndarray, season: int, alpha: float = 0.05) -> bool:
    """Whether the changes of ``z`` have a significant autocorrelation at lag ``season``: the
    seasonality test of the Theta method (as statsforecast's ``auto_theta`` runs it), applied
    to the first differences so that a trend or a random walk does not pass for a season."""
    dz = np.diff(z)
    if season < 2 or len(dz) < 2 * season + 2 or np.ptp(dz) == 0:
        return False
    from scipy.stats import norm
    from statsmodels.tsa.stattools import acf

    r = acf(dz, nlags=season, fft=False)[1:]
    stat = np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(dz))
    return bool(abs(r[-1]) / stat > norm.ppf(1 - alpha))


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


class ETS(StatsForecastBaseline):
    """statsforecast ``AutoETS`` over the weekly season (non-seasonal models included)."""

    name = "ets"

    def _make(self, season: int, z: np.ndarray) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season if weekly_pattern(z, season) else 1)


class ARIMA(StatsForecastBaseline):
    """statsforecast ``AutoARIMA``, non-seasonal."""

    name = "arima"

    def _make(self, season: int, z: np.ndarray) -> Any:
        from statsforecast.models import AutoARIMA

        return AutoARIMA(season_length=1)
