"""Read back what a run wrote, for people: a compact forecast table and why it was chosen."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from sqlalchemy import select

from pipeline_lib import db


def forecast_table(
    db_url: str, as_of: dt.date, horizons: tuple[int, ...] = (1, 5, 14)
) -> pd.DataFrame:
    """One row per series: the point forecast and its interval at a few horizons, and the models
    (or combinations) that produced them, in the same order."""
    t = db.forecasts
    query = select(
        t.c.series_id,
        t.c.model,
        t.c.horizon,
        t.c.target_date,
        t.c.yhat,
        t.c.yhat_lower,
        t.c.yhat_upper,
    ).where(t.c.forecast_date == as_of)
    with db.engine_scope(db_url) as engine, engine.connect() as conn:
        df = pd.DataFrame(conn.execute(query).mappings().all())
    if df.empty:
        return df
    df = df[df["horizon"].isin(horizons) | (df["horizon"] == df["horizon"].max())]
    cells = df.apply(lambda r: f"{r.yhat:,.2f} [{r.yhat_lower:,.2f}, {r.yhat_upper:,.2f}]", axis=1)
    table = df.assign(cell=cells).pivot(index="series_id", columns="horizon", values="cell")
    table.columns = [f"h={h} ({df[df.horizon == h].target_date.iloc[0]})" for h in table.columns]
    models = df.sort_values("horizon").groupby("series_id")["model"]
    table.insert(0, "models at these horizons", models.agg(lambda m: " / ".join(m)))
    return table


def selection_lines(db_url: str, as_of: dt.date, shown: int = 4) -> list[str]:
    """Why each series publishes what it does, per horizon bucket: the rule, the label
    published, and the backtest MASE (lower is better) of the best few models of the bucket,
    from ``model_selections``' evidence."""
    t = db.model_selections
    query = select(
        t.c.series_id, t.c.horizon_from, t.c.horizon_to, t.c.model, t.c.rule, t.c.evidence
    ).where(t.c.forecast_date == as_of)
    with db.engine_scope(db_url) as engine, engine.connect() as conn:
        rows = conn.execute(query.order_by(t.c.series_id, t.c.horizon_from)).mappings().all()
    lines = []
    for r in rows:
        evidence = json.loads(r["evidence"] or "{}")
        mase = evidence.get("mase", {})
        ranked = sorted(
            (m for m in mase if m != "mean" and mase[m] is not None), key=lambda m: mase[m]
        )
        listed = ranked[:shown] + [m for m in ("naive",) if m in ranked[shown:]]  # reference
        scores = ", ".join(f"{m} {mase[m]:.3f}" for m in listed)
        bucket = (
            f"h={r['horizon_from']}"
            if r["horizon_from"] == r["horizon_to"]
            else f"h={r['horizon_from']}-{r['horizon_to']}"
        )
        windows = evidence.get("windows")
        lines.append(
            f"{r['series_id']:<8} {bucket:<8} {r['model']:<28} {r['rule']}: backtest MASE "
            f"over {windows} windows: {scores}"
        )
    return lines
