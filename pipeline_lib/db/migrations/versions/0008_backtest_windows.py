"""A night's backtest stored as windows written once; backtest_results becomes a view.

Every night wrote its whole backtest (every series, model, origin and horizon: 392,000 rows at
100 series, 4.5 million at 1,000), though a baseline's forecast from an origin is the same on
every night whose backtest holds that origin. From 0008 a window (one model version's forecast
of one series from one origin, with its actuals and metric terms) is written once,
``backtest_windows`` and ``backtest_forecasts``, keyed by a digest of its rows; a night records
which windows it scored (``backtest_nights``) and each series' MASE scale
(``backtest_series``: ``scaled_error`` is ``abs_error / mase_scale``, the only term that
depends on the night). ``sql/views.sql`` defines the view ``backtest_results`` over them with
the table's columns, so what BI tools read does not change.

Upgrade: each night's windows of the old table become windows of their own (ids 1, 2, ... in
key order; new windows get digests, which do not meet them in practice), a series' scale is
the mean of ``abs_error / scaled_error`` over its positive rows (so a migrated night's
``scaled_error`` may differ from the stored one in the last bits; NULL where no row of the
series has a positive one). Downgrade: the table again, filled from the view's query.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
MAP = "backtest_window_map_0008"  # scratch table of the upgrade
KEYS = ["backtest_date", "model_version", "series_id", "forecast_date"]
ROW_COLUMNS = ["horizon", "yhat", "yhat_lower", "yhat_upper", "actual", "abs_error"]
ROW_COLUMNS += ["squared_error", "smape", "pinball_lower", "pinball_median", "pinball_upper"]
ROW_COLUMNS += ["covered"]
# the rows of backtest_results (the view of sql/views.sql, the same query)
RESULTS = (
    "SELECT n.backtest_date, w.model_version, n.series_id, w.forecast_date, f.target_date, "
    "w.model, f.horizon, f.yhat, f.yhat_lower, f.yhat_upper, f.actual, f.abs_error, "
    "f.squared_error, CASE WHEN s.mase_scale > 0 THEN f.abs_error / s.mase_scale END, "
    "f.smape, f.pinball_lower, f.pinball_median, f.pinball_upper, f.covered, s.run_id, "
    "s.created_at FROM backtest_nights AS n "
    "JOIN backtest_series AS s ON s.backtest_date = n.backtest_date AND s.series_id = n.series_id "
    "JOIN backtest_windows AS w ON w.window_id = n.window_id "
    "JOIN backtest_forecasts AS f ON f.window_id = n.window_id"
)


def _run_id(comment: str = "pipeline_runs.run_id that wrote it") -> sa.Column:
    return sa.Column("run_id", sa.String(64), nullable=False, comment=comment)


def _row_columns(scaled_error: bool = False) -> list[sa.Column]:
    """A backtest row's forecast, actual and metric terms (with ``scaled_error``: as the table
    of revisions up to 0007 held them)."""
    scaled = [
        sa.Column("scaled_error", sa.Float, comment="abs_error / naive in-sample MAE; mean = MASE")
    ]
    return [
        sa.Column("horizon", sa.Integer, nullable=False, comment="steps ahead of forecast_date"),
        sa.Column("yhat", sa.Float, nullable=False, comment="point forecast (median quantile)"),
        sa.Column("yhat_lower", sa.Float, comment="lower quantile"),
        sa.Column("yhat_upper", sa.Float, comment="upper quantile"),
        sa.Column("actual", sa.Float, nullable=False, comment="observed value on target_date"),
        sa.Column("abs_error", sa.Float, nullable=False, comment="|actual - yhat|; mean = MAE"),
        sa.Column("squared_error", sa.Float, nullable=False, comment="mean = MSE; RMSE = its root"),
        *(scaled if scaled_error else []),
        sa.Column("smape", sa.Float, nullable=False, comment="sMAPE term (0..200); mean = sMAPE"),
        sa.Column("pinball_lower", sa.Float, comment="pinball loss of yhat_lower at its quantile"),
        sa.Column(
            "pinball_median", sa.Float, comment="pinball loss of yhat at the median quantile"
        ),
        sa.Column("pinball_upper", sa.Float, comment="pinball loss of yhat_upper at its quantile"),
        sa.Column(
            "covered",
            sa.Boolean(create_constraint=False),
            nullable=False,
            comment="actual within [yhat_lower, yhat_upper]; mean = coverage",
        ),
    ]


def _create_tables() -> None:
    op.create_table(
        "backtest_windows",
        sa.Column(
            "window_id",
            sa.BigInteger,
            nullable=False,
            autoincrement=False,
            comment="digest of the window's key and rows: a window whose rows change is a new one",
        ),
        sa.Column("model_version", sa.String(64), nullable=False, comment="model_versions.version"),
        sa.Column("series_id", sa.String(64), nullable=False, comment="series forecast"),
        sa.Column(
            "forecast_date", sa.Date, nullable=False, comment="window origin: data up to this day"
        ),
        sa.Column(
            "model",
            sa.String(64),
            nullable=False,
            comment="a model (lstm, naive, ets, ...) or a combination mean(a,b,...)",
        ),
        _run_id("pipeline_runs.run_id that first wrote it"),
        sa.Column(
            "created_at", TZ, nullable=False, comment="when the window was first written (UTC)"
        ),
        sa.PrimaryKeyConstraint("window_id", name="pk_backtest_windows"),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.version"],
            name="fk_backtest_windows_model_version_model_versions",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.run_id"], name="fk_backtest_windows_run_id_pipeline_runs"
        ),
        comment="Backtest windows: a model version's forecast of a series from one origin",
    )
    op.create_index(
        "ix_backtest_windows_model_version_series_id",
        "backtest_windows",
        ["model_version", "series_id"],
    )
    op.create_table(
        "backtest_forecasts",
        sa.Column(
            "window_id",
            sa.BigInteger,
            nullable=False,
            autoincrement=False,
            comment="backtest_windows.window_id",
        ),
        sa.Column("target_date", sa.Date, nullable=False, comment="the day forecast"),
        *_row_columns(),
        sa.PrimaryKeyConstraint("window_id", "target_date", name="pk_backtest_forecasts"),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["backtest_windows.window_id"],
            name="fk_backtest_forecasts_window_id_backtest_windows",
        ),
        comment="The rows of each backtest window: forecast, actual and per-row metric terms",
    )
    op.create_table(
        "backtest_series",
        sa.Column(
            "backtest_date", sa.Date, nullable=False, comment="run date (as-of) of the backtest"
        ),
        sa.Column("series_id", sa.String(64), nullable=False, comment="series scored"),
        sa.Column(
            "mase_scale",
            sa.Float,
            comment="the series' naive in-sample MAE up to the night's first origin: "
            "scaled_error = abs_error / mase_scale (NULL when not positive)",
        ),
        _run_id(),
        sa.Column("created_at", TZ, nullable=False, comment="when the row was written (UTC)"),
        sa.PrimaryKeyConstraint("backtest_date", "series_id", name="pk_backtest_series"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.run_id"], name="fk_backtest_series_run_id_pipeline_runs"
        ),
        comment="A night's backtest per series: its MASE scale and the run that scored it",
    )
    op.create_table(
        "backtest_nights",
        sa.Column(
            "backtest_date", sa.Date, nullable=False, comment="run date (as-of) of the backtest"
        ),
        sa.Column("series_id", sa.String(64), nullable=False, comment="series scored"),
        sa.Column(
            "window_id",
            sa.BigInteger,
            nullable=False,
            autoincrement=False,
            comment="backtest_windows.window_id scored that night",
        ),
        sa.PrimaryKeyConstraint(
            "backtest_date", "series_id", "window_id", name="pk_backtest_nights"
        ),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["backtest_windows.window_id"],
            name="fk_backtest_nights_window_id_backtest_windows",
        ),
        comment="The windows each night's backtest scored, per series",
    )
    op.create_index("ix_backtest_nights_window_id", "backtest_nights", ["window_id"])


def _create_results_table() -> None:
    """backtest_results as revision 0007 left it."""
    op.create_table(
        "backtest_results",
        sa.Column(
            "backtest_date", sa.Date, nullable=False, comment="run date (as-of) of the backtest"
        ),
        sa.Column("model_version", sa.String(64), nullable=False, comment="model_versions.version"),
        sa.Column("series_id", sa.String(64), nullable=False, comment="series forecast"),
        sa.Column(
            "forecast_date", sa.Date, nullable=False, comment="window origin: data up to this day"
        ),
        sa.Column("target_date", sa.Date, nullable=False, comment="the day forecast"),
        sa.Column(
            "model",
            sa.String(64),
            nullable=False,
            comment="a model (lstm, naive, ets, ...) or a combination mean(a,b,...)",
        ),
        *_row_columns(scaled_error=True),
        _run_id(),
        sa.Column("created_at", TZ, nullable=False, comment="when the row was written (UTC)"),
        sa.PrimaryKeyConstraint(*KEYS, "target_date", name="pk_backtest_results"),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.version"],
            name="fk_backtest_results_model_version_model_versions",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.run_id"], name="fk_backtest_results_run_id_pipeline_runs"
        ),
        comment="Backtest forecasts with actuals and per-row metric terms, same shape as forecasts",
    )
    op.create_index(
        "ix_backtest_results_model_version_series_id",
        "backtest_results",
        ["model_version", "series_id"],
    )


def upgrade() -> None:
    _create_tables()
    keys = ", ".join(KEYS)
    on = " AND ".join(f"m.{k} = r.{k}" for k in KEYS)
    rows = ", ".join(f"r.{c}" for c in ROW_COLUMNS)
    for statement in (
        # a scratch map: each night's window gets an id of its own
        f"CREATE TABLE {MAP} AS SELECT {keys}, MIN(model) AS model, MIN(run_id) AS run_id, "
        f"MIN(created_at) AS created_at, ROW_NUMBER() OVER (ORDER BY {keys}) AS window_id "
        f"FROM backtest_results GROUP BY {keys}",
        "INSERT INTO backtest_windows (window_id, model_version, series_id, forecast_date, "
        "model, run_id, created_at) SELECT window_id, model_version, series_id, forecast_date, "
        f"model, run_id, created_at FROM {MAP}",
        f"INSERT INTO backtest_forecasts (window_id, target_date, {', '.join(ROW_COLUMNS)}) "
        f"SELECT m.window_id, r.target_date, {rows} FROM backtest_results AS r JOIN {MAP} AS m "
        f"ON {on}",
        "INSERT INTO backtest_series (backtest_date, series_id, mase_scale, run_id, created_at) "
        "SELECT backtest_date, series_id, "
        "AVG(CASE WHEN scaled_error > 0 THEN abs_error / scaled_error END), MIN(run_id), "
        "MIN(created_at) FROM backtest_results GROUP BY backtest_date, series_id",
        "INSERT INTO backtest_nights (backtest_date, series_id, window_id) "
        f"SELECT backtest_date, series_id, window_id FROM {MAP}",
        f"DROP TABLE {MAP}",
    ):
        op.execute(statement)
    op.drop_index("ix_backtest_results_model_version_series_id", table_name="backtest_results")
    op.drop_table("backtest_results")


def downgrade() -> None:
    _create_results_table()
    op.execute(f"INSERT INTO backtest_results {RESULTS}")
    op.drop_index("ix_backtest_nights_window_id", table_name="backtest_nights")
    op.drop_table("backtest_nights")
    op.drop_table("backtest_series")
    op.drop_table("backtest_forecasts")
    op.drop_index("ix_backtest_windows_model_version_series_id", table_name="backtest_windows")
    op.drop_table("backtest_windows")
