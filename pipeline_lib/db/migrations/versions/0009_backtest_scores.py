"""A night's backtest scores per series, model and horizon, written with the night.

The next night's decay check reads what it needs of the newest backtest (per series, model and
horizon: the mean scaled error and the two sums that give the series' MASE scale). Up to 0008
it aggregated the night's rows in SQL through the view, about 1 s at 100 series (392,000 rows)
on SQLite, ten times that at 1,000; from 0009 the writer stores those figures with the night
(``backtest_scores``, 8,400 rows at 100 series) and the reader takes them from there.

Upgrade: the table, filled with the same aggregate of every night already stored (the view's
join: the views are dropped while revisions run). Downgrade: the table dropped.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INF, NEG_INF = sa.literal(float("inf")), sa.literal(float("-inf"))
FIELDS = ["backtest_date", "series_id", "model", "horizon", "backtest_mase"]
FIELDS += ["scale_abs_error", "scale_scaled_error"]


def upgrade() -> None:
    op.create_table(
        "backtest_scores",
        sa.Column(
            "backtest_date", sa.Date, nullable=False, comment="run date (as-of) of the backtest"
        ),
        sa.Column("series_id", sa.String(64), nullable=False, comment="series scored"),
        sa.Column("model", sa.String(64), nullable=False, comment="a model or a combination"),
        sa.Column("horizon", sa.Integer, nullable=False, comment="steps ahead"),
        sa.Column(
            "backtest_mase",
            sa.Float,
            comment="mean of the finite scaled_error of the night's rows (NULL when none is)",
        ),
        sa.Column(
            "scale_abs_error",
            sa.Float,
            comment="sum of abs_error over the rows whose scaled_error is finite and positive",
        ),
        sa.Column(
            "scale_scaled_error",
            sa.Float,
            comment="sum of scaled_error over the same rows: the ratio is the series' MASE scale",
        ),
        sa.PrimaryKeyConstraint(
            "backtest_date", "series_id", "model", "horizon", name="pk_backtest_scores"
        ),
        comment="A night's backtest per series, model and horizon, as the next night's decay "
        "check reads it (the same figures as backtest_results aggregated, written with them)",
    )
    n = _table("backtest_nights", "backtest_date", "series_id", "window_id")
    s = _table("backtest_series", "backtest_date", "series_id", "mase_scale")
    w = _table("backtest_windows", "window_id", "model")
    f = _table("backtest_forecasts", "window_id", "horizon", "abs_error")
    scaled = sa.case((s.c.mase_scale > 0, f.c.abs_error / s.c.mase_scale))
    finite = sa.and_(scaled > NEG_INF, scaled < INF)
    positive = sa.and_(scaled > 0, scaled < INF)
    keys = [n.c.backtest_date, n.c.series_id, w.c.model, f.c.horizon]
    scores = (
        sa.select(
            *keys,
            sa.func.avg(sa.case((finite, scaled))),
            sa.func.sum(sa.case((positive, f.c.abs_error))),
            sa.func.sum(sa.case((positive, scaled))),
        )
        .select_from(
            n.join(
                s, sa.and_(s.c.backtest_date == n.c.backtest_date, s.c.series_id == n.c.series_id)
            )
            .join(w, w.c.window_id == n.c.window_id)
            .join(f, f.c.window_id == n.c.window_id)
        )
        .group_by(*keys)
    )
    target = _table("backtest_scores", *FIELDS)
    op.get_bind().execute(target.insert().from_select(FIELDS, scores))


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns))


def downgrade() -> None:
    op.drop_table("backtest_scores")
