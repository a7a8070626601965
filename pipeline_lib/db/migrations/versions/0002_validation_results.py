"""validation_results: one row per run and validated batch, failed batches included.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "validation_results",
        sa.Column(
            "run_id", sa.String(64), nullable=False, comment="pipeline_runs.run_id that validated"
        ),
        sa.Column("dataset", sa.String(32), nullable=False, comment="prices, weather or features"),
        sa.Column("batch", sa.String(128), nullable=False, comment="batch name, e.g. prices-SP500"),
        sa.Column(
            "as_of", sa.Date, nullable=False, comment="forecast date the batch was validated for"
        ),
        sa.Column(
            "success",
            sa.Boolean(create_constraint=False),
            nullable=False,
            comment="false when a critical expectation failed (the batch was quarantined)",
        ),
        sa.Column("row_count", sa.Integer, nullable=False, comment="rows in the batch"),
        sa.Column("evaluated", sa.Integer, nullable=False, comment="expectations evaluated"),
        sa.Column("successful", sa.Integer, nullable=False, comment="expectations met"),
        sa.Column(
            "failed_critical", sa.Integer, nullable=False, comment="critical expectations failed"
        ),
        sa.Column(
            "failed_warning", sa.Integer, nullable=False, comment="warning expectations failed"
        ),
        sa.Column(
            "failed_expectations",
            sa.Text,
            comment="JSON list: check, columns, expectation_type, severity, unexpected_count, rows",
        ),
        sa.Column(
            "validated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the result was written (UTC)",
        ),
        sa.PrimaryKeyConstraint("run_id", "dataset", "batch", name="pk_validation_results"),
        comment="Validation results: one row per run and batch, failed batches included",
    )
    op.create_index(
        "ix_validation_results_as_of_dataset", "validation_results", ["as_of", "dataset"]
    )


def downgrade() -> None:
    op.drop_table("validation_results")
