"""pipeline_runs.status may be 'crashed': a run whose process died holding the writer lease,
found and marked by the next run that takes it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CHECK = "ck_pipeline_runs_status"


def _statuses(statuses: str, comment: str) -> None:
    with op.batch_alter_table("pipeline_runs") as batch:  # SQLite: one table copy
        batch.drop_constraint(op.f(_CHECK), type_="check")
        batch.create_check_constraint(op.f(_CHECK), f"status IN ({statuses})")
    if op.get_bind().dialect.name == "postgresql":  # SQLite keeps no comments
        op.alter_column(
            "pipeline_runs",
            "status",
            existing_type=sa.String(16),
            existing_nullable=False,
            comment=comment,
        )


def upgrade() -> None:
    _statuses(
        "'running', 'succeeded', 'failed', 'crashed'",
        "running, succeeded, failed, or crashed (its process died; found by a later run)",
    )


def downgrade() -> None:
    op.execute("UPDATE pipeline_runs SET status = 'failed' WHERE status = 'crashed'")
    _statuses("'running', 'succeeded', 'failed'", "running, succeeded or failed")
