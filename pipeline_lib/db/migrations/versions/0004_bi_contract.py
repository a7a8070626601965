"""The BI contract: actuals, foreign keys to runs and model versions, indexes for the views.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

# (table, column, parent table, parent column) of each new foreign key
FOREIGN_KEYS = [
    ("forecasts", "model_version", "model_versions", "version"),
    ("forecasts", "run_id", "pipeline_runs", "run_id"),
    ("backtest_results", "model_version", "model_versions", "version"),
    ("backtest_results", "run_id", "pipeline_runs", "run_id"),
    ("drift_metrics", "run_id", "pipeline_runs", "run_id"),
    ("validation_results", "run_id", "pipeline_runs", "run_id"),
]


def _check_orphans(table: str, column: str, parent: str, parent_column: str) -> None:
    """Fail with the offending values before a foreign key would, naming table and column.
    (Offline, ``--sql``, there are no rows to look at: the DBA's database will check.)"""
    if context.is_offline_mode():
        return
    query = sa.text(
        f"SELECT DISTINCT t.{column} FROM {table} AS t "  # identifiers are the constants above
        f"LEFT JOIN {parent} AS p ON p.{parent_column} = t.{column} "
        f"WHERE p.{parent_column} IS NULL ORDER BY 1 LIMIT 5"
    )
    orphans = [r[0] for r in op.get_bind().execute(query)]
    if orphans:
        raise RuntimeError(
            f"cannot add the foreign key {table}.{column} -> {parent}.{parent_column}: "
            f"{table} has rows whose {column} is not in {parent}, e.g. {orphans}. "
            f"Add the missing {parent} rows (or delete those {table} rows), then upgrade again."
        )


def upgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    for table, column, parent, parent_column in FOREIGN_KEYS:
        _check_orphans(table, column, parent, parent_column)

    op.create_index("ix_pipeline_runs_as_of_flow", "pipeline_runs", ["as_of", "flow"])
    op.create_index("ix_model_versions_status", "model_versions", ["status"])
    if is_pg:
        op.alter_column(
            "model_versions",
            "kind",
            existing_type=sa.String(16),
            existing_nullable=False,
            comment="full, finetune or baseline",
        )
        op.alter_column(
            "model_versions",
            "parent_version",
            existing_type=sa.String(64),
            comment="version fine-tuned from, null for full",
        )

    op.drop_index("ix_forecasts_series_id_target_date", table_name="forecasts")
    op.create_index(
        "ix_forecasts_series_id_target_date_forecast_date",
        "forecasts",
        ["series_id", "target_date", "forecast_date"],
    )
    op.create_index("ix_forecasts_forecast_date", "forecasts", ["forecast_date"])
    op.create_index("ix_forecasts_model_version", "forecasts", ["model_version"])
    op.create_index(
        "ix_drift_metrics_series_id_forecast_date", "drift_metrics", ["series_id", "forecast_date"]
    )
    for table in ("forecasts", "backtest_results", "drift_metrics", "validation_results"):
        with op.batch_alter_table(table) as batch:  # SQLite: one table copy per table
            for fk_table, column, parent, parent_column in FOREIGN_KEYS:
                if fk_table == table:
                    batch.create_foreign_key(
                        f"fk_{table}_{column}_{parent}", parent, [column], [parent_column]
                    )

    op.create_table(
        "actuals",
        sa.Column("series_id", sa.String(64), nullable=False, comment="series observed"),
        sa.Column("target_date", sa.Date, nullable=False, comment="the day observed"),
        sa.Column(
            "actual", sa.Float, nullable=False, comment="observed value of the series' target"
        ),
        sa.Column(
            "run_id",
            sa.String(64),
            nullable=False,
            comment="pipeline_runs.run_id that last wrote it",
        ),
        sa.Column("updated_at", TZ, nullable=False, comment="when the row was last written (UTC)"),
        sa.PrimaryKeyConstraint("series_id", "target_date", name="pk_actuals"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.run_id"], name="fk_actuals_run_id_pipeline_runs"
        ),
        comment="Actuals: the observed target per series and date, for forecast accuracy",
    )
    op.create_index("ix_actuals_target_date", "actuals", ["target_date"])
    op.create_table(
        "schema_state",
        sa.Column(
            "key", sa.String(64), nullable=False, comment="what is recorded, e.g. views_sha256"
        ),
        sa.Column("value", sa.Text, nullable=False, comment="its value"),
        sa.Column("updated_at", TZ, nullable=False, comment="when it was last set (UTC)"),
        sa.PrimaryKeyConstraint("key", name="pk_schema_state"),
        comment="Schema bookkeeping for `forecast-pipeline db upgrade`: the BI views' checksum",
    )


def downgrade() -> None:
    op.drop_table("schema_state")
    op.drop_table("actuals")
    for table in ("validation_results", "drift_metrics", "backtest_results", "forecasts"):
        with op.batch_alter_table(table) as batch:
            for fk_table, column, parent, _ in FOREIGN_KEYS:
                if fk_table == table:
                    batch.drop_constraint(f"fk_{table}_{column}_{parent}", type_="foreignkey")
    op.drop_index("ix_drift_metrics_series_id_forecast_date", table_name="drift_metrics")
    op.drop_index("ix_forecasts_model_version", table_name="forecasts")
    op.drop_index("ix_forecasts_forecast_date", table_name="forecasts")
    op.drop_index("ix_forecasts_series_id_target_date_forecast_date", table_name="forecasts")
    op.create_index("ix_forecasts_series_id_target_date", "forecasts", ["series_id", "target_date"])
    op.drop_index("ix_model_versions_status", table_name="model_versions")
    op.drop_index("ix_pipeline_runs_as_of_flow", table_name="pipeline_runs")
