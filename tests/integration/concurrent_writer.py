"""One of two processes writing overlapping forecasts and actuals at the same moment.

Used by test_concurrency.py: ``python concurrent_writer.py URL RUN_ID FIRST_DAY HORIZONS
BULK_ROWS START_AT ROUNDS``. From wall-clock time START_AT, ROUNDS times: one transaction
(retried on a deadlock, as the pipeline's publish is) that replaces the forecasts of 6 series x
3 forecast dates from FIRST_DAY, with HORIZONS horizons each, and upserts their actuals. Scopes
and rows are shuffled per round, so without the writers' ordering two processes would lock
rows in opposite orders. Exit status 0 when every round committed.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time

import pandas as pd

from pipeline_lib import db

SERIES = [f"S{i}" for i in range(6)]


def frames(run_id: str, first: dt.date, horizons: int, rng: random.Random):
    days = [first + dt.timedelta(days=i) for i in range(3)]
    rows = [
        {
            "series_id": s,
            "forecast_date": d,
            "target_date": d + dt.timedelta(days=h),
            "horizon": h,
            "yhat": rng.random(),
            "yhat_lower": None,
            "yhat_upper": None,
            "model_version": "v1",
        }
        for s in SERIES
        for d in days
        for h in range(1, horizons + 1)
    ]
    rng.shuffle(rows)
    actuals = pd.DataFrame(
        [{"series_id": s, "target_date": d, "actual": rng.random()} for s in SERIES for d in days]
    ).sample(frac=1.0, random_state=rng.randrange(1000))
    return pd.DataFrame(rows), actuals


def main(argv: list[str]) -> int:
    url, run_id, first, horizons, bulk_rows, start_at, rounds = argv
    rng = random.Random(run_id)
    engine = db.make_engine(url)
    while time.time() < float(start_at):
        time.sleep(0.005)
    for _ in range(int(rounds)):
        forecasts, actuals = frames(run_id, dt.date.fromisoformat(first), int(horizons), rng)

        def write(conn, forecasts=forecasts, actuals=actuals) -> None:
            db.write_forecasts(conn, forecasts, run_id, bulk_rows=int(bulk_rows))
            db.write_actuals(conn, actuals, run_id, bulk_rows=int(bulk_rows))

        db.run_in_transaction(engine, write)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
