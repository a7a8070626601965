"""Statistical baselines from statsforecast: AutoETS and AutoARIMA, in the baseline interface
(the machinery here; the two models are :mod:`pipeline_lib.forecasting.ets_arima`).

What a user gets from statsforecast in ten lines, fitted the way the product fits its LSTM: on
the rows up to a *fit point* on or before the backtest's first origin (see
``pipeline_lib.forecasting.backtest``), then applied without refitting to the data up to each
later origin with statsforecast's ``forward`` (the states are updated, the parameters stay). So
every backtest forecast is out of sample and tonight's forecast comes from the very model the
backtest scored. The fit point moves in steps of ``refit_every`` rows
(``backtest.statistical_refit_rows``, 60: about a quarter of business days; each series on
nights of its own, so a night refits one series in 60, not all of them at once). The form
of a model (ETS's error, trend, damping and season; ARIMA's order, mean and drift) is searched
at one fit point in ``search_every`` (``backtest.statistical_search_every``, 4: about a year of
business days) and kept by the fit points between, which re-estimate its parameters on their
own rows (a tenth of a search's cost); a fit point's form always comes from the same search
point, fitted again if it is not in the cache, so what a night publishes does not depend on
what the models folder holds. The fitted models and their forecasts per origin are kept in
the models folder (``statistical/<model>/<series>/``), keyed by a hash of the rows they read
(between searches, with the key of the search point's fit whose form they take, so a warm
night reads one file per series and model): a night fits only the series whose step it is
and forecasts only its new origins (``bench/selection_cost.py`` prints the cost). The cache
holds pickles written by the pipeline itself; a torn, foreign or stale file is refitted, never
trusted (its hash of the rows must match).

- ``ets``: ``AutoETS`` (AICc search over error, trend, damping). Where the series has a weekly
  pattern (:func:`weekly_pattern`: the Theta method's seasonality test on its changes at the
  weekly lag, 5 rows for business days, 7 for ``"D"``) the search includes the seasonal models, a
  seasonal ETS; elsewhere it is skipped (it costs seven times the non-seasonal search).
- ``arima``: non-seasonal ``AutoARIMA`` (stepwise, with drift where it helps).

The models work on log values while the series has been positive up to its fit end (prices),
so errors and bands are relative; from an origin whose rows since the fit point hold a value
<= 0 the same rows fitted on the raw scale forecast instead (a log model cannot follow it).
The bands are statsforecast's own prediction intervals at the levels that map to the
configured quantiles (``q < 0.5``: the lower end of the ``100 (1 - 2q)`` % interval;
``q > 0.5``: the upper end of the ``100 (2q - 1)`` % one; 0.5: the mean, the median on the
log scale). A series whose model search fails (too short, constant) gets no forecast and a
warning in the log.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from pipeline_lib.config import STATISTICAL_REFIT_ROWS, STATISTICAL_SEARCH_EVERY
from pipeline_lib.features.calendar import weekly_season
from pipeline_lib.forecasting.baselines import Baseline, SeriesHistory
from pipeline_lib.forecasting.statistical_fits import (
    KEEP_FITS,
    Fitted,
    fit_digest,
    fit_point,
    load_fit,
    prune_fits,
    save_fit,
    search_point,
)

log = logging.getLogger(__name__)

Form = tuple[int | str | bool, ...]  # what a model search chose, its parameters left out


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
    """A statsforecast model fitted once per series at its fit point, then ``forward``-ed to
    each origin.

    ``fit_end``: datetime64 of the last row the fit may use (None: the first origin). The fit
    point is the last of the series' steps of ``refit_every`` rows on or before it
    (:func:`fit_point`: the steps of the series are staggered), so one fitted model serves
    ``refit_every`` nights in a row (its parameters stay; ``forward`` updates the states
    with each origin's data). ``fit_rows``: the fit reads the last ``fit_rows`` rows before
    the fit point, and each origin's forecast runs the model over the rows from the same first
    row (0: every row since the series' first), so a night's cost does not grow with the
    history. ``min_train``: fewest rows a fit needs. ``cache``: a folder URL
    (the models folder's ``statistical/``) keeping each fitted model and its forecasts per
    origin, keyed by a hash of the rows they read, so a night recomputes only what is new;
    ``None``: memory only.
    """

    name: ClassVar[str]

    def __init__(
        self,
        min_train: int = 60,
        refit_every: int = STATISTICAL_REFIT_ROWS,
        cache: str | None = None,
        fit_rows: int = 0,
        search_every: int = STATISTICAL_SEARCH_EVERY,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {refit_every}")
        if search_every < 1:
            raise ValueError(f"search_every must be >= 1, got {search_every}")
        if fit_rows and fit_rows < min_train:
            raise ValueError(f"fit_rows must be 0 (every row) or >= {min_train}, got {fit_rows}")
        self.min_train, self.refit_every, self.cache = min_train, refit_every, cache
        self.fit_rows, self.search_every = fit_rows, search_every
        self.fit_end: np.datetime64 | None = None
        self._fitted: dict[tuple[int, int, bool], Fitted | None] = {}
        self._fresh: set[tuple[int, int, bool]] = set()  # fitted here, not read from the cache

    def fit(self, history: Any) -> Self:
        super().fit(history)
        self._fitted, self._fresh = {}, set()
        return self

    def at(self, fit_end: Any) -> StatsForecastBaseline:
        """Fit on the rows dated on or before ``fit_end`` (a date; None: the first origin)."""
        self.fit_end = None if fit_end is None else np.datetime64(fit_end, "ns")
        return self

    def _make(self, season: int, z: np.ndarray, form: Form | None = None) -> Any:
        """The unfitted statsforecast model for log (or raw) values ``z`` up to the fit end:
        its automatic search, or with ``form`` (see :meth:`_form`) that form alone."""
        raise NotImplementedError

    @staticmethod
    def _form(model: Any) -> Form | None:
        """What a fitted model's search chose (the parameters left out), for :meth:`_make`;
        None where the fit does not say (statsforecast's special case of a constant series):
        the fit point searches for itself."""
        raise NotImplementedError

    def _search_point(self, s: SeriesHistory, n_fit: int) -> int:
        """The search point whose form the fit at ``n_fit`` of ``s`` takes."""
        sid = self._ids.get(id(s), "")
        return search_point(n_fit, self.refit_every, self.search_every, sid)

    def _first_row(self, n_fit: int) -> int:
        """The first row a fit at ``n_fit`` rows reads."""
        return max(0, n_fit - self.fit_rows) if self.fit_rows else 0

    def _model_for(
        self,
        s: SeriesHistory,
        n_fit: int,
        frequency: str,
        raw: bool = False,
        form_only: bool = False,
    ) -> Fitted | None:
        """The model fitted on rows ``_first_row(n_fit)..n_fit-1`` (memoised, then from the
        cache): on logs while they are positive, on the raw values with ``raw``. Its form is
        searched at a search point (:func:`search_point`), else taken from the search point's
        model. ``form_only``: wanted for its form (a search point before the fit point), so a
        fresh fit is written to the cache at once (no forecast of it will write it)."""
        key = (id(s), n_fit, raw)
        if key in self._fitted:
            return self._fitted[key]
        y = s.y[self._first_row(n_fit) : n_fit]
        use_log = not raw and bool(np.all(y > 0))
        season = weekly_season(frequency)
        # the search point whose form this fit takes: named in the cache key by its own key (its
        # rows decide its form), so a warm night reads this fit alone, not the search's too
        searched_at = n_fit if raw else self._search_point(s, n_fit)
        searched_key = None
        if searched_at != n_fit and searched_at >= self.min_train:
            y_searched = s.y[self._first_row(searched_at) : searched_at]
            if bool(np.all(y_searched > 0)) == use_log:  # the same scale: its form serves
                searched_key = fit_digest(self.name, season, use_log, self.quantiles, y_searched)
        digest = fit_digest(self.name, season, use_log, self.quantiles, y, searched_key)
        url = None
        if self.cache:
            sid = self._ids.get(id(s), "series")
            url = f"{self.cache.rstrip('/')}/{self.name}/{sid}/{n_fit}-{digest[:16]}.pkl"
        fitted = load_fit(url, digest) if url else None
        if fitted is None:
            form = None
            if searched_key is not None:
                searched = self._model_for(s, searched_at, frequency, form_only=True)
                form = None if searched is None else self._form(searched.model)
            z = np.log(y) if use_log else y
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        model = self._make(season, z, form).fit(z)
                    except Exception:  # the form fits no more: search again
                        if form is None:
                            raise
                        model = self._make(season, z).fit(z)
                fitted = Fitted(digest, model, use_log, {}, url)
                self._fresh.add(key)
                if url and form_only:  # no forecast will save it: the later fit points need it
                    save_fit(fitted)
            except Exception as exc:  # statsforecast raises many kinds on degenerate series
                log.warning("%s: no model for a series of %d rows: %s", self.name, n_fit, exc)
        elif fitted is not None:
            fitted.url = url
        self._fitted[key] = fitted
        return fitted

    def _forecast(
        self, s: SeriesHistory, origins: np.ndarray, horizon: int, frequency: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = np.full((3, len(origins), horizon), np.nan)
        if not len(origins):
            return out[0], out[1], out[2]
        if self.fit_end is not None:
            rows = int(np.searchsorted(s.dates, self.fit_end, side="right"))
        else:
            rows = int(origins.min()) + 1
        n_fit = fit_point(rows, self.refit_every, self._ids.get(id(s), ""))
        if n_fit < self.min_train:
            return out[0], out[1], out[2]
        fitted = self._model_for(s, n_fit, frequency)
        if fitted is None:
            return out[0], out[1], out[2]
        keys = _levels(self.quantiles)
        levels = sorted({_number(k.split("-", 1)[1]) for k in keys if k != "mean"})
        changed: dict[int, Fitted] = {}
        for i, origin in enumerate(origins):
            o = int(origin)
            if o + 1 < n_fit:  # before the fit point: in sample
                continue
            y = s.y[self._first_row(n_fit) : o + 1]
            after = s.y[n_fit : o + 1]  # the rows since the fit point
            model = fitted
            if fitted.use_log and not np.all(after > 0):
                # a log model cannot follow a value <= 0: the same rows fitted on the raw
                # scale serve the origins after one, until the next fit point
                raw = self._model_for(s, n_fit, frequency, raw=True)
                if raw is None:
                    continue
                model = raw
            seen = (o, horizon, hashlib.sha256(after.tobytes()).hexdigest()[:16])
            if seen not in model.forecasts:
                z = np.log(y) if model.use_log else y
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = model.model.forward(y=z, h=horizon, level=levels or None)
                values = np.stack([np.asarray(res[k], np.float64) for k in keys])
                model.forecasts[seen] = np.exp(values) if model.use_log else values
                changed[id(model)] = model
            out[:, i] = model.forecasts[seen]
        for model in changed.values():
            if model.url:
                save_fit(model)
        if changed and fitted.url and (id(s), n_fit, False) in self._fresh:
            self._fresh.discard((id(s), n_fit, False))  # a new fit point: older fits may go
            searched_at = self._search_point(s, n_fit)  # its fit stays: later points need it
            prune_fits(fitted.url, min(searched_at, n_fit - KEEP_FITS * self.refit_every))
        lower, point, upper = out  # the quantiles' order
        return point, np.minimum(lower, point), np.maximum(upper, point)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value
