"""A night's backtest: its windows, their forecasts, the series' MASE scales, which windows each
night scored, its scores per series, model and horizon, and the view that joins them
(``backtest_results``, declared for the readers).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from pipeline_lib.db.tables.columns import metadata, model_version, run_id, tz

# A night's backtest is stored as windows (one model version's forecast of one series from one
# origin, with its actuals and metric terms), written once: a baseline's window from an origin
# is the same on every night whose backtest holds that origin, so a night writes only its new
# windows, and says which windows it scored (backtest_nights) and the MASE scale of each series
# (backtest_series). The view backtest_results (sql/views.sql) gives the rows of every night.
backtest_windows = Table(
    "backtest_windows",
    metadata,
    Column(
        "window_id",
        BigInteger,
        primary_key=True,
        autoincrement=False,
        comment="digest of the window's key and rows: a window whose rows change is a new one",
    ),
    model_version("model_versions.version"),
    Column("series_id", String(64), nullable=False, comment="series forecast"),
    Column("forecast_date", Date, nullable=False, comment="window origin: data up to this day"),
    Column(
        "model",
        String(64),
        nullable=False,
        comment="a model (lstm, naive, ets, ...) or a combination mean(a,b,...)",
    ),
    run_id("pipeline_runs.run_id that first wrote it"),
    Column("created_at", tz(), nullable=False, comment="when the window was first written (UTC)"),
    Index(None, "model_version", "series_id"),
    comment="Backtest windows: a model version's forecast of a series from one origin",
)

backtest_forecasts = Table(
    "backtest_forecasts",
    metadata,
    Column(
        "window_id",
        BigInteger,
        ForeignKey("backtest_windows.window_id"),
        primary_key=True,
        autoincrement=False,
        comment="backtest_windows.window_id",
    ),
    Column("target_date", Date, primary_key=True, comment="the day forecast"),
    Column("horizon", Integer, nullable=False, comment="steps ahead of forecast_date"),
    Column("yhat", Float, nullable=False, comment="point forecast (median quantile)"),
    Column("yhat_lower", Float, comment="lower quantile"),
    Column("yhat_upper", Float, comment="upper quantile"),
    Column("actual", Float, nullable=False, comment="observed value on target_date"),
    Column("abs_error", Float, nullable=False, comment="|actual - yhat|; mean = MAE"),
    Column("squared_error", Float, nullable=False, comment="mean = MSE; RMSE = its root"),
    Column("smape", Float, nullable=False, comment="sMAPE term (0..200); mean = sMAPE"),
    Column("pinball_lower", Float, comment="pinball loss of yhat_lower at its quantile"),
    Column("pinball_median", Float, comment="pinball loss of yhat at the median quantile"),
    Column("pinball_upper", Float, comment="pinball loss of yhat_upper at its quantile"),
    Column(
        "covered",
        Boolean(create_constraint=False),
        nullable=False,
        comment="actual within [yhat_lower, yhat_upper]; mean = coverage",
    ),
    comment="The rows of each backtest window: forecast, actual and per-row metric terms",
)

backtest_series = Table(
    "backtest_series",
    metadata,
    Column("backtest_date", Date, primary_key=True, comment="run date (as-of) of the backtest"),
    Column("series_id", String(64), primary_key=True, comment="series scored"),
    Column(
        "mase_scale",
        Float,
        comment="the series' naive in-sample MAE up to the night's first origin: "
        "scaled_error = abs_error / mase_scale (NULL when not positive)",
    ),
    run_id(),
    Column("created_at", tz(), nullable=False, comment="when the row was written (UTC)"),
    comment="A night's backtest per series: its MASE scale and the run that scored it",
)

backtest_nights = Table(
    "backtest_nights",
    metadata,
    Column("backtest_date", Date, primary_key=True, comment="run date (as-of) of the backtest"),
    Column("series_id", String(64), primary_key=True, comment="series scored"),
    Column(
        "window_id",
        BigInteger,
        ForeignKey("backtest_windows.window_id"),
        primary_key=True,
        autoincrement=False,
        comment="backtest_windows.window_id scored that night",
    ),
    Index(None, "window_id"),  # the windows no night refers to any more (pruning)
    comment="The windows each night's backtest scored, per series",
)

backtest_scores = Table(
    "backtest_scores",
    metadata,
    Column("backtest_date", Date, primary_key=True, comment="run date (as-of) of the backtest"),
    Column("series_id", String(64), primary_key=True, comment="series scored"),
    Column("model", String(64), primary_key=True, comment="a model or a combination"),
    Column("horizon", Integer, primary_key=True, comment="steps ahead"),
    Column(
        "backtest_mase",
        Float,
        comment="mean of the finite scaled_error of the night's rows (NULL when none is)",
    ),
    Column(
        "scale_abs_error",
        Float,
        comment="sum of abs_error over the rows whose scaled_error is finite and positive",
    ),
    Column(
        "scale_scaled_error",
        Float,
        comment="sum of scaled_error over the same rows: the ratio is the series' MASE scale",
    ),
    comment="A night's backtest per series, model and horizon, as the next night's decay "
    "check reads it (the same figures as backtest_results aggregated, written with them)",
)

# Not created by the migrations: the view of sql/views.sql, declared for the readers.
views = MetaData()
backtest_results = Table(
    "backtest_results",
    views,
    Column("backtest_date", Date, comment="run date (as-of) of the backtest"),
    Column("model_version", String(64), comment="model_versions.version"),
    Column("series_id", String(64), comment="series forecast"),
    Column("forecast_date", Date, comment="window origin: data up to this day"),
    Column("target_date", Date, comment="the day forecast"),
    Column("model", String(64), comment="a model (lstm, naive, ets, ...) or a combination"),
    Column("horizon", Integer),
    Column("yhat", Float),
    Column("yhat_lower", Float),
    Column("yhat_upper", Float),
    Column("actual", Float),
    Column("abs_error", Float),
    Column("squared_error", Float),
    Column("scaled_error", Float),
    Column("smape", Float),
    Column("pinball_lower", Float),
    Column("pinball_median", Float),
    Column("pinball_upper", Float),
    Column("covered", Boolean(create_constraint=False)),
    Column("run_id", String(64)),
    Column("created_at", tz()),
    comment="Backtest forecasts with actuals and per-row metric terms, same shape as forecasts",
)
