"""Reads the monitoring stage needs: published forecasts and the backtest they are judged by."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from pipeline_lib.db.backtests import SCORE_FIELDS
from pipeline_lib.db.tables import backtest_results, backtest_scores, backtest_series, forecasts

# the forecast columns of pipeline_lib.forecasting.model.forecast (not imported: it would load
# torch)
FORECAST_FIELDS = ["series_id", "forecast_date", "target_date", "horizon", "yhat"]
FORECAST_FIELDS += ["yhat_lower", "yhat_upper", "model", "model_version"]
BACKTEST_SUMMARY_FIELDS = SCORE_FIELDS  # pipeline_lib.monitoring.decay.BACKTEST_SUMMARY_COLUMNS


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
    when given), every model, for ``series_ids``; empty when there is none. (A night's backtest
    is ~400,000 rows at 100 series: the monitoring reads :func:`read_backtest_summary`.)"""
    t = backtest_results
    columns = [c.name for c in t.columns]
    with engine.connect() as conn:
        date = _newest_backtest(conn, before, since)
        if date is None:
            return pd.DataFrame(columns=columns)
        query = select(t).where(t.c.backtest_date == date, t.c.series_id.in_(series_ids))
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=columns)


def read_backtest_summary(
    engine: Engine, series_ids: list[str], before: dt.date, since: dt.date | None = None
) -> pd.DataFrame:
    """What performance decay needs of the newest backtest dated before ``before`` (and on or
    after ``since``): per (series_id, model, horizon) of ``series_ids``, ``backtest_mase`` (the
    mean finite scaled_error) and ``scale_abs_error`` and ``scale_scaled_error`` (the sums of
    abs_error and scaled_error over the rows whose scaled_error is finite and positive; NULL,
    NaN here, when none is), as the night's writer stored them in ``backtest_scores``
    (:func:`pipeline_lib.db.backtests.scores_of` of its rows): the same figures as
    :func:`pipeline_lib.monitoring.decay.backtest_summary` of :func:`read_latest_backtest`'s rows,
    in rows that grow with series x models x horizons, not with the backtest's origins. Empty
    when there is no such backtest."""
    t = backtest_scores
    with engine.connect() as conn:
        date = _newest_backtest(conn, before, since)
        if date is None:
            return pd.DataFrame(columns=BACKTEST_SUMMARY_FIELDS)
        keys = [t.c.series_id, t.c.model, t.c.horizon]
        query = (
            select(*(t.c[c] for c in BACKTEST_SUMMARY_FIELDS))
            .where(t.c.backtest_date == date, t.c.series_id.in_(series_ids))
            .order_by(*keys)
        )
        rows = conn.execute(query).mappings().all()
    frame = pd.DataFrame(rows, columns=BACKTEST_SUMMARY_FIELDS)
    numbers = ["backtest_mase", "scale_abs_error", "scale_scaled_error"]
    return frame.astype(dict.fromkeys(numbers, "float64") | {"horizon": "int64"})


def _newest_backtest(conn: Connection, before: dt.date, since: dt.date | None) -> dt.date | None:
    t = backtest_series  # a night's series (the view would join every row)
    newest = select(func.max(t.c.backtest_date)).where(t.c.backtest_date < before)
    if since is not None:
        newest = newest.where(t.c.backtest_date >= since)
    return conn.execute(newest).scalar()
