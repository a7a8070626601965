"""What BI tools read each night: the forecasts, the actuals they are scored against, and the
drift metrics.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
)

from pipeline_lib.db.tables.columns import metadata, model_version, run_id, tz

forecasts = Table(
    "forecasts",
    metadata,
    Column("series_id", String(64), primary_key=True, comment="series forecast"),
    Column("forecast_date", Date, primary_key=True, comment="as-of date: data up to this day"),
    Column("target_date", Date, primary_key=True, comment="the day being forecast"),
    Column("horizon", Integer, nullable=False, comment="steps ahead of forecast_date (1 = next)"),
    Column("yhat", Float, nullable=False, comment="point forecast (median quantile)"),
    Column("yhat_lower", Float, comment="lower quantile"),
    Column("yhat_upper", Float, comment="upper quantile"),
    Column(
        "model",
        String(64),
        nullable=False,
        server_default="lstm",
        comment="what produced the row: a model (lstm, naive, ets, ...) or a combination "
        "mean(a,b,...)",
    ),
    model_version("model_versions.version used"),
    run_id(),
    Column("created_at", tz(), nullable=False, comment="when the row was written (UTC)"),
    # latest_forecasts and the accuracy views: one series' target dates, newest forecast first
    Index(None, "series_id", "target_date", "forecast_date"),
    Index(None, "forecast_date"),  # tonight's forecasts
    Index(None, "model_version"),  # model history
    comment="Forecasts: one row per series, forecast date and target date",
)

actuals = Table(
    "actuals",
    metadata,
    Column("series_id", String(64), primary_key=True, comment="series observed"),
    Column("target_date", Date, primary_key=True, comment="the day observed"),
    Column("actual", Float, nullable=False, comment="observed value of the series' target"),
    run_id("pipeline_runs.run_id that last wrote it"),
    Column("updated_at", tz(), nullable=False, comment="when the row was last written (UTC)"),
    Index(None, "target_date"),
    comment="Actuals: the observed target per series and date, for forecast accuracy",
)

drift_metrics = Table(
    "drift_metrics",
    metadata,
    Column("forecast_date", Date, primary_key=True, comment="as-of date of the check"),
    Column("series_id", String(64), primary_key=True, comment="series checked"),
    Column("feature", String(64), primary_key=True, comment="feature (or prediction) checked"),
    Column("metric", String(32), primary_key=True, comment="psi, ks_statistic, ks_pvalue, ..."),
    Column("value", Float, comment="metric value"),
    Column("threshold", Float, comment="threshold applied, null when not a flag by itself"),
    Column("is_drift", Boolean(create_constraint=False), nullable=False, comment="breach flag"),
    run_id(),
    Column("created_at", tz(), nullable=False, comment="when the row was written (UTC)"),
    Index(None, "series_id", "forecast_date"),  # current_drift_alerts: a series' newest check
    comment="Drift metrics between a reference and a recent window, with breach flags",
)
