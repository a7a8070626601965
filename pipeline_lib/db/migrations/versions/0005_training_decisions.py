"""training_decisions: the retraining decision of every forecast run, with the drift and
decay behind it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_decisions",
        sa.Column(
            "run_id",
            sa.String(64),
            nullable=False,
            comment="pipeline_runs.run_id of the forecast run that decided",
        ),
        sa.Column("forecast_date", sa.Date, nullable=False, comment="as-of date of the run"),
        sa.Column("action", sa.String(16), nullable=False, comment="full, finetune or reuse"),
        sa.Column(
            "trigger",
            sa.String(32),
            nullable=False,
            comment="what decided it: no_model, requested, settings_changed, holdout, "
            "no_new_data, cadence, drift, decay, drift+decay or routine (a fine-tune)",
        ),
        sa.Column("reason", sa.Text, nullable=False, comment="the decision in words"),
        sa.Column(
            "base_version", sa.String(64), comment="the current model before the run, if any"
        ),
        sa.Column(
            "model_version",
            sa.String(64),
            nullable=False,
            comment="model trained (or reused) by the run",
        ),
        sa.Column(
            "contested",
            sa.Boolean(create_constraint=False),
            nullable=False,
            comment="the new model had to beat the champion on the backtest",
        ),
        sa.Column(
            "drift_retrain",
            sa.Boolean(create_constraint=False),
            nullable=False,
            comment="the retraining policy called for a full training (the cooldown, the "
            "cadence or another reason may have decided instead)",
        ),
        sa.Column(
            "drifted_pairs",
            sa.Integer,
            nullable=False,
            comment="watched (series, feature) pairs whose input-drift metrics agreed",
        ),
        sa.Column(
            "decayed_series",
            sa.Integer,
            nullable=False,
            comment="series whose forecast decay (all horizons) was flagged",
        ),
        sa.Column(
            "flags",
            sa.Text,
            comment="JSON list of the counted flags: kind, series_id, feature, metrics",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the row was written (UTC)",
        ),
        sa.CheckConstraint(
            "action IN ('full', 'finetune', 'reuse')", name=op.f("ck_training_decisions_action")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.run_id"],
            name="fk_training_decisions_run_id_pipeline_runs",
        ),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.version"],
            name="fk_training_decisions_model_version_model_versions",
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_training_decisions"),
        comment="The retraining decision of every forecast run, with the drift and decay behind it",
    )
    op.create_index("ix_training_decisions_forecast_date", "training_decisions", ["forecast_date"])


def downgrade() -> None:
    op.drop_table("training_decisions")
