"""Champion/challenger: forecasts.model, the backtest_results table, baseline model versions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "forecasts",
        sa.Column(
            "model",
            sa.String(32),
            nullable=False,
            server_default="lstm",  # every row written before this revision came from the LSTM
            comment="model that produced the row: lstm, or the baseline that beat it on backtest",
        ),
    )
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint(op.f("ck_model_versions_kind"), type_="check")
        batch.create_check_constraint(
            op.f("ck_model_versions_kind"), "kind IN ('full', 'finetune', 'baseline')"
        )
    if op.get_bind().dialect.name == "postgresql":  # SQLite keeps no comments
        op.alter_column(
            "model_versions",
            "status",
            existing_type=sa.String(16),
            existing_nullable=False,
            comment="champion, challenger (lost its contest), retired (replaced), or baseline",
        )
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
        sa.Column("model", sa.String(32), nullable=False, comment="lstm or a baseline name"),
        sa.Column("horizon", sa.Integer, nullable=False, comment="steps ahead of forecast_date"),
        sa.Column("yhat", sa.Float, nullable=False, comment="point forecast (median quantile)"),
        sa.Column("yhat_lower", sa.Float, comment="lower quantile"),
        sa.Column("yhat_upper", sa.Float, comment="upper quantile"),
        sa.Column("actual", sa.Float, nullable=False, comment="observed value on target_date"),
        sa.Column("abs_error", sa.Float, nullable=False, comment="|actual - yhat|; mean = MAE"),
        sa.Column("squared_error", sa.Float, nullable=False, comment="mean = MSE; RMSE = its root"),
        sa.Column("scaled_error", sa.Float, comment="abs_error / naive in-sample MAE; mean = MASE"),
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
        sa.Column(
            "run_id", sa.String(64), nullable=False, comment="pipeline_runs.run_id that wrote it"
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the row was written (UTC)",
        ),
        sa.PrimaryKeyConstraint(
            "backtest_date",
            "model_version",
            "series_id",
            "forecast_date",
            "target_date",
            name="pk_backtest_results",
        ),
        comment="Backtest forecasts with actuals and per-row metric terms, same shape as forecasts",
    )
    op.create_index(
        "ix_backtest_results_model_version_series_id",
        "backtest_results",
        ["model_version", "series_id"],
    )


def downgrade() -> None:
    op.drop_table("backtest_results")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint(op.f("ck_model_versions_kind"), type_="check")
        batch.create_check_constraint(
            op.f("ck_model_versions_kind"), "kind IN ('full', 'finetune')"
        )
    with op.batch_alter_table("forecasts") as batch:
        batch.drop_column("model")
