"""Two processes writing overlapping dates at the same moment, on SQLite and PostgreSQL: both
finish, and every (series, forecast date) holds the complete rows of exactly one of them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, func, select

from pipeline_lib import db

WRITER = Path(__file__).with_name("concurrent_writer.py")
REPO = Path(__file__).resolve().parents[2]
D0 = dt.date(2024, 3, 1)
ROUNDS = 15
# run id -> (first forecast date, horizons, rows from which PostgreSQL writes by COPY)
WRITERS = {"writer-a": (D0, 10, 1), "writer-b": (D0 + dt.timedelta(days=1), 4, 10_000)}


def test_two_processes_writing_overlapping_dates_end_with_one_writers_rows_per_key(
    db_engine: Engine, db_url: str
) -> None:
    db.create_schema(db_engine)
    for run_id in WRITERS:
        db.start_run(db_engine, run_id, "backfill", D0)
    db.upsert_model_version(db_engine, {"version": "v1", "kind": "full", "status": "champion"})
    start_at = time.time() + 4.0  # both processes imported and connected by then
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), db_url, run_id, first.isoformat(), str(h), str(bulk)]
            + [str(start_at), str(ROUNDS)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run_id, (first, h, bulk) in WRITERS.items()
    ]
    outcomes = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err[-3000:]

    with db_engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(select(db.forecasts)).mappings().all())
        actual_keys = conn.execute(
            select(func.count(), func.count(func.distinct(db.actuals.c.series_id)))
        ).one()
    # one writer per scope, with all of its horizons: never a mix of the two
    per_scope = rows.groupby(["series_id", "forecast_date"]).agg(
        writers=("run_id", "nunique"), run_id=("run_id", "first"), n=("horizon", "size")
    )
    assert (per_scope["writers"] == 1).all()
    expected_n = per_scope["run_id"].map({r: h for r, (_, h, _) in WRITERS.items()})
    assert (per_scope["n"] == expected_n).all()
    assert len(per_scope) == 6 * 4  # 6 series x the 4 forecast dates the two writers cover
    # the overlapping dates went to whichever committed last; both wrote them
    assert not rows.duplicated(["series_id", "forecast_date", "target_date"]).any()
    assert tuple(actual_keys) == (6 * 4, 6)  # one actual per series and date
