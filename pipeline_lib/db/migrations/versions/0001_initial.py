"""The first schema: forecasts, drift metrics, model versions and pipeline runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
BOOL = sa.Boolean(create_constraint=False)


def upgrade() -> None:
    op.create_table(
        "drift_metrics",
        sa.Column("forecast_date", sa.Date, nullable=False, comment="as-of date of the check"),
        sa.Column("series_id", sa.String(64), nullable=False, comment="series checked"),
        sa.Column(
            "feature", sa.String(64), nullable=False, comment="feature (or prediction) checked"
        ),
        sa.Column(
            "metric", sa.String(32), nullable=False, comment="psi, ks_statistic, ks_pvalue, ..."
        ),
        sa.Column("value", sa.Float, comment="metric value"),
        sa.Column(
            "threshold", sa.Float, comment="threshold applied, null when not a flag by itself"
        ),
        sa.Column("is_drift", BOOL, nullable=False, comment="breach flag"),
        sa.Column(
            "run_id", sa.String(64), nullable=False, comment="pipeline_runs.run_id that wrote it"
        ),
        sa.Column("created_at", TZ, nullable=False, comment="when the row was written (UTC)"),
        sa.PrimaryKeyConstraint(
            "forecast_date", "series_id", "feature", "metric", name="pk_drift_metrics"
        ),
        comment="Drift metrics between a reference and a recent window, with breach flags",
    )
    op.create_table(
        "forecasts",
        sa.Column("series_id", sa.String(64), nullable=False, comment="series forecast"),
        sa.Column(
            "forecast_date", sa.Date, nullable=False, comment="as-of date: data up to this day"
        ),
        sa.Column("target_date", sa.Date, nullable=False, comment="the day being forecast"),
        sa.Column(
            "horizon", sa.Integer, nullable=False, comment="steps ahead of forecast_date (1 = next)"
        ),
        sa.Column("yhat", sa.Float, nullable=False, comment="point forecast (median quantile)"),
        sa.Column("yhat_lower", sa.Float, comment="lower quantile"),
        sa.Column("yhat_upper", sa.Float, comment="upper quantile"),
        sa.Column(
            "model_version", sa.String(64), nullable=False, comment="model_versions.version used"
        ),
        sa.Column(
            "run_id", sa.String(64), nullable=False, comment="pipeline_runs.run_id that wrote it"
        ),
        sa.Column("created_at", TZ, nullable=False, comment="when the row was written (UTC)"),
        sa.PrimaryKeyConstraint("series_id", "forecast_date", "target_date", name="pk_forecasts"),
        comment="Forecasts: one row per series, forecast date and target date",
    )
    op.create_index("ix_forecasts_series_id_target_date", "forecasts", ["series_id", "target_date"])
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(64), nullable=False, comment="model version id"),
        sa.Column(
            "parent_version", sa.String(64), comment="version fine-tuned from, null for full"
        ),
        sa.Column("kind", sa.String(16), nullable=False, comment="full or finetune"),
        sa.Column(
            "status", sa.String(16), nullable=False, comment="champion, challenger, retired, ..."
        ),
        sa.Column("created_at", TZ, nullable=False, comment="when the model was registered (UTC)"),
        sa.Column("train_start", sa.Date, comment="first date of the training window"),
        sa.Column("train_end", sa.Date, comment="last date of the training window"),
        sa.Column("data_fingerprint", sa.String(128), comment="hash of the training data"),
        sa.Column("hyperparameters", sa.Text, comment="hyper-parameters, JSON text"),
        sa.Column("metrics", sa.Text, comment="backtest metrics, JSON text"),
        sa.Column("path", sa.Text, comment="checkpoint location"),
        sa.PrimaryKeyConstraint("version", name="pk_model_versions"),
        sa.CheckConstraint("kind IN ('full', 'finetune')", name=op.f("ck_model_versions_kind")),
        comment="Registered model versions and their lineage",
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(64), nullable=False, comment="run id (e.g. the flow run id)"),
        sa.Column("flow", sa.String(64), nullable=False, comment="flow name"),
        sa.Column("as_of", sa.Date, nullable=False, comment="forecast date the run is for"),
        sa.Column("status", sa.String(16), nullable=False, comment="running, succeeded or failed"),
        sa.Column("started_at", TZ, nullable=False, comment="start time (UTC)"),
        sa.Column("finished_at", TZ, comment="end time (UTC), null while running"),
        sa.Column("message", sa.Text, comment="outcome message, e.g. the error"),
        sa.Column("details", sa.Text, comment="run details, JSON text"),
        sa.PrimaryKeyConstraint("run_id", name="pk_pipeline_runs"),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_pipeline_runs_status")
        ),
        comment="One row per pipeline run, for audit and monitoring",
    )


def downgrade() -> None:
    for table in ("pipeline_runs", "model_versions", "forecasts", "drift_metrics"):
        op.drop_table(table)
