"""Reads the monitoring stage needs: published forecasts and the backtest they are judged by."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine, func, select

from pipeline_lib.db.tables import backtest_results, forecasts

# the forecast columns of pipeline_lib.model.forecast (not imported: it would load torch)
FORECAST_FIELDS = ["series_id", "forecast_date", "target_date", "horizon", "yhat"]
FORECAST_FIELDS += ["yhat_lower", "yhat_upper", "model", "model_version"]


def read_forecasts(
    engine: Engine,
    series_ids: list[str],
    forecast_from: dt.date,
    forecast_to: dt.date,
) -> pd.DataFrame:
    """Published forecasts of ``series_ids`` made from ``forecast_from`` to ``forecast_to``
    (forecast dates, inclusive)."""
    t = forecasts
    query = select(*(t.c[c] for c in FORECAST_FIELDS)).where(
        t.c.series_id.in_(series_ids),
        t.c.forecast_date >= forecast_from,
        t.c.forecast_date <= forecast_to,
    )
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.series_id, t.c.forecast_date, t.c.horizon))
        return pd.DataFrame(rows.mappings().all(), columns=FORECAST_FIELDS)


def read_latest_backtest(
    engine: Engine, series_ids: list[str], before: dt.date, since: dt.date | None = None
) -> pd.DataFrame:
    """The rows of the newest backtest dated before ``before`` (and on or after ``since``,
    when given), every model, for ``series_ids``; empty when there is none."""
    t = backtest_results
    newest = select(func.max(t.c.backtest_date)).where(t.c.backtest_date < before)
    if since is not None:
        newest = newest.where(t.c.backtest_date >= since)
    columns = [c.name for c in t.columns]
    with engine.connect() as conn:
        date = conn.execute(newest).scalar()
        if date is None:
            return pd.DataFrame(columns=columns)
        query = select(t).where(t.c.backtest_date == date, t.c.series_id.in_(series_ids))
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=columns)
