"""The two statsforecast baselines, on the machinery of
:mod:`pipeline_lib.forecasting.statistical` (fit points, ``forward``, bands, the kept fits):
``ets``, ``AutoETS``, seasonal where the series' changes have a weekly pattern
(:func:`weekly_pattern`), and ``arima``, a non-seasonal ``AutoARIMA``; each says how to make
its model and how to read back the form a search chose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline_lib.forecasting.statistical import Form, StatsForecastBaseline


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


class ETS(StatsForecastBaseline):
    """statsforecast ``AutoETS`` over the weekly season (non-seasonal models included)."""

    name = "ets"

    def _make(self, season: int, z: np.ndarray, form: Form | None = None) -> Any:
        from statsforecast.models import AutoETS

        if form is None:
            return AutoETS(season_length=season if weekly_pattern(z, season) else 1)
        season_length, components, damped = form
        return AutoETS(season_length=int(season_length), model=str(components), damped=bool(damped))

    @staticmethod
    def _form(model: Any) -> Form | None:
        """The season length, the components (``"MNA"``: error, trend, season) and the damping
        of the chosen ``ETS(M,Ad,A)``."""
        method = model.model_.get("method", "")
        if not (method.startswith("ETS(") and method.count(",") == 2):
            return None
        error, trend, season = method[4:-1].split(",")
        return (int(model.season_length), error + trend[0] + season, trend.endswith("d"))


class ARIMA(StatsForecastBaseline):
    """statsforecast ``AutoARIMA``, non-seasonal."""

    name = "arima"

    def _make(self, season: int, z: np.ndarray, form: Form | None = None) -> Any:
        from statsforecast.models import ARIMA as FixedARIMA
        from statsforecast.models import AutoARIMA

        if form is None:
            return AutoARIMA(season_length=1)
        p, d, q, mean, drift = form
        return FixedARIMA(
            order=(int(p), int(d), int(q)), include_mean=bool(mean), include_drift=bool(drift)
        )

    @staticmethod
    def _form(model: Any) -> Form | None:
        """The order ``(p, d, q)`` of the chosen ARIMA and whether it has a mean and a drift."""
        if "arma" not in model.model_ or "coef" not in model.model_:
            return None
        p, q, _, _, _, d, _ = model.model_["arma"]
        coef = model.model_["coef"]
        return (int(p), int(d), int(q), "intercept" in coef, "drift" in coef)
