"""model_selections: what each night published per series and horizon bucket, by which rule,
on what evidence; a published forecast may come from a combination of models.

forecasts.model and backtest_results.model grow to String(64) (a combination's label,
``mean(a,b,...)``, is longer than a model's name), and model_versions.kind may be
'combination' (the version of such a mean: its members and their versions in
``hyperparameters``).

Downgrade: 0006 has no combinations, so it refuses (changing nothing) while a forecast,
backtest row or training decision refers to a combination version, or a model label is longer
than 32 characters, naming examples; delete or rewrite those rows first (e.g. rerun those dates
with the older release). Otherwise it drops model_selections, deletes the combination versions
(nothing refers to them any more: their members and weights lived in model_selections and in
their own row) and restores the kind constraint and String(32).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
_KIND_CHECK = "ck_model_versions_kind"
# the tables that refer to model_versions.version (besides model_selections)
REFERRERS = ("forecasts", "backtest_results", "training_decisions")
# (table, server default, comment at 0006, comment from 0007) of each model label column
MODEL_COLUMNS = [
    (
        "forecasts",
        "lstm",
        "model that produced the row: lstm, or the baseline that beat it on backtest",
        "what produced the row: a model (lstm, naive, ets, ...) or a combination mean(a,b,...)",
    ),
    (
        "backtest_results",
        None,
        "lstm or a baseline name",
        "a model (lstm, naive, ets, ...) or a combination mean(a,b,...)",
    ),
]
# (column, type, nullable, comment at 0006, comment from 0007) of the model_versions comments
# that change
VERSION_COMMENTS = [
    (
        "kind",
        sa.String(16),
        False,
        "full, finetune or baseline",
        "full, finetune, baseline or combination",
    ),
    (
        "status",
        sa.String(16),
        False,
        "champion, challenger (lost its contest), retired (replaced), or baseline",
        "champion, challenger (lost its contest), retired (replaced), baseline, or "
        "combination (a weighted mean of other versions' forecasts)",
    ),
    (
        "hyperparameters",
        sa.Text(),
        True,
        "hyper-parameters, JSON text",
        'hyper-parameters, JSON text; a combination\'s: {"members": {model: weight}, '
        '"versions": {model: model_version}}',
    ),
]


def _kinds(kinds: str) -> None:
    with op.batch_alter_table("model_versions") as batch:  # SQLite: one table copy
        batch.drop_constraint(op.f(_KIND_CHECK), type_="check")
        batch.create_check_constraint(op.f(_KIND_CHECK), f"kind IN ({kinds})")


def _model_columns(upgrade: bool) -> None:
    old, new = (sa.String(32), sa.String(64)) if upgrade else (sa.String(64), sa.String(32))
    for table, default, comment_0006, comment_0007 in MODEL_COLUMNS:
        with op.batch_alter_table(table) as batch:  # SQLite: one table copy per table
            batch.alter_column(
                "model",
                existing_type=old,
                type_=new,
                existing_nullable=False,
                existing_server_default=default,
                comment=comment_0007 if upgrade else comment_0006,
            )


def _version_comments(upgrade: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":  # SQLite keeps no comments
        return
    for column, type_, nullable, comment_0006, comment_0007 in VERSION_COMMENTS:
        op.alter_column(
            "model_versions",
            column,
            existing_type=type_,
            existing_nullable=nullable,
            comment=comment_0007 if upgrade else comment_0006,
        )


def upgrade() -> None:
    _model_columns(upgrade=True)
    _kinds("'full', 'finetune', 'baseline', 'combination'")
    _version_comments(upgrade=True)
    op.create_table(
        "model_selections",
        sa.Column(
            "forecast_date", sa.Date, nullable=False, comment="as-of date of the night's choice"
        ),
        sa.Column("series_id", sa.String(64), nullable=False, comment="series the choice is for"),
        sa.Column(
            "horizon_from", sa.Integer, nullable=False, comment="first horizon of the bucket"
        ),
        sa.Column("horizon_to", sa.Integer, nullable=False, comment="last horizon of the bucket"),
        sa.Column(
            "model",
            sa.String(64),
            nullable=False,
            comment="the label published for those horizons (forecasts.model): a model or "
            "mean(a,b,...)",
        ),
        sa.Column(
            "model_version",
            sa.String(64),
            nullable=False,
            comment="model_versions.version published: the single model's, or the "
            "combination's combo-...",
        ),
        sa.Column(
            "rule",
            sa.String(16),
            nullable=False,
            comment="the selection rule that chose it: dm_set, best, dm, margin or combination",
        ),
        sa.Column(
            "weights", sa.Text, nullable=False, comment="JSON {model: weight}, weights sum to 1"
        ),
        sa.Column(
            "member_versions",
            sa.Text,
            nullable=False,
            comment="JSON {model: model_versions.version}",
        ),
        sa.Column(
            "evidence",
            sa.Text,
            comment="JSON: the rule's inputs (each model's MASE on the bucket, p-values, "
            "windows compared, models left out)",
        ),
        sa.Column(
            "run_id", sa.String(64), nullable=False, comment="pipeline_runs.run_id that wrote it"
        ),
        sa.Column("created_at", TZ, nullable=False, comment="when the row was written (UTC)"),
        sa.PrimaryKeyConstraint(
            "forecast_date", "series_id", "horizon_from", name="pk_model_selections"
        ),
        sa.ForeignKeyConstraint(
            ["model_version"],
            ["model_versions.version"],
            name="fk_model_selections_model_version_model_versions",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.run_id"], name="fk_model_selections_run_id_pipeline_runs"
        ),
        comment="What each night published per series and horizon bucket, by which rule, on "
        "what evidence",
    )
    op.create_index(
        "ix_model_selections_series_id_forecast_date",
        "model_selections",
        ["series_id", "forecast_date"],
    )


def _refuse_what_0006_cannot_hold() -> None:
    """Raise, before anything changes, naming rows that refer to a combination version or
    carry a model label over 32 characters. (Offline, ``--sql``, there are no rows to look
    at: the DBA's database will refuse the constraint or the shorter column instead.)"""
    if context.is_offline_mode():
        return
    conn = op.get_bind()
    problems = []
    for table in REFERRERS:  # identifiers are the constants above
        query = sa.text(
            f"SELECT DISTINCT t.model_version FROM {table} AS t "
            "JOIN model_versions AS m ON m.version = t.model_version "
            "WHERE m.kind = 'combination' ORDER BY 1 LIMIT 5"
        )
        if versions := [r[0] for r in conn.execute(query)]:
            problems.append(f"{table} rows refer to the combination versions {versions}")
    for table, *_ in MODEL_COLUMNS:
        query = sa.text(
            f"SELECT DISTINCT model FROM {table} WHERE LENGTH(model) > 32 ORDER BY 1 LIMIT 5"
        )
        if labels := [r[0] for r in conn.execute(query)]:
            problems.append(f"{table}.model holds labels longer than 32 characters: {labels}")
    if problems:
        raise RuntimeError(
            "cannot downgrade below 0007 (model_selections): revision 0006 has no combination "
            "model versions and 32-character model labels, but "
            + "; ".join(problems)
            + ". Delete those rows (or rerun those dates with the older release), then "
            "downgrade again."
        )


def downgrade() -> None:
    _refuse_what_0006_cannot_hold()
    op.drop_index("ix_model_selections_series_id_forecast_date", table_name="model_selections")
    op.drop_table("model_selections")
    # nothing refers to them now (checked above): their members were recorded here and in
    # model_selections only
    unreferenced = " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {t} AS r WHERE r.model_version = model_versions.version)"
        for t in REFERRERS
    )
    op.execute(f"DELETE FROM model_versions WHERE kind = 'combination' AND {unreferenced}")
    _version_comments(upgrade=False)
    _kinds("'full', 'finetune', 'baseline'")
    _model_columns(upgrade=False)
