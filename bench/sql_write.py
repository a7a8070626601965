"""Write 1 million forecast rows into PostgreSQL: the product's writer against a raw COPY.

The same rows, the same empty ``forecasts`` table (created by the migrations: primary key,
three indexes, two foreign keys), measured in the same run, alternating:

- **raw COPY**: the DataFrame as an Arrow table (``pa.Table.from_pandas``), written as CSV into
  ``COPY forecasts (...) FROM STDIN`` through psycopg; no checks. The fastest hand-written load.
- **writer**: ``pipeline_lib.db.write_forecasts(engine, df, run_id)``, what a run calls: typed
  conversion and checks (missing columns, nulls in NOT NULL columns, duplicate keys, unknown run
  or model version), advisory locks on the scopes, the scoped DELETE, then COPY.

Before each load the table is emptied (TRUNCATE) and VACUUM ANALYZEd; the order of the two
alternates between repeats, so a warm-up advantage cancels out. Printed: each time, the
medians, rows/s and the ratio raw/writer (the writer's share of raw COPY speed; goal >= 0.80).
Then the writer again over the same 1M rows already in the table (a rerun: delete and rewrite),
the row-by-row path (executemany, ``bulk_rows`` above the size) on a 50,000-row slice for
comparison, and the latest-forecast view: ``EXPLAIN ANALYZE`` of a single-series query on
``latest_forecasts`` (goal < 50 ms), median of several runs.

    python bench/sql_write.py                     # 200 series x 250 days x 20 horizons = 1M rows
    python bench/sql_write.py --series 50 --repeats 2
    python bench/sql_write.py --url postgresql+psycopg://user@host:5432/admin_db

A throw-away database ``bench_sql_<random>`` is created through ``--url`` (default: the local
PostgreSQL of the dev machine, database ``test``) and dropped at the end.

``--backtest``: a night's backtest instead (issue 18), on a SQLite file and on PostgreSQL:
``--series`` x 40 origins x 14 horizons x 7 models (100 series: 392,000 rows), what
``publish_results`` writes every night. Per database, the writer
(``write_backtest_results(..., series_ids=...)``, as a night calls it): into empty tables
(every window new: what every night wrote up to revision 0008, which stored each night's rows
whole), the next night (its two LSTMs new versions, the baselines' windows those of the first
night: what a nightly writes when its origins are last night's, as on every second night;
on the others one origin per series is new too) and a rerun of that night (no window new); then
the decay's read of the newest backtest: every row (``read_latest_backtest``) against the
summary aggregated in SQL (``read_backtest_summary``).

    python bench/sql_write.py --backtest            # 100 series, SQLite and PostgreSQL
    python bench/sql_write.py --backtest --series 20 --no-postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from pipeline_lib import db

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = [c.name for c in db.forecasts.columns]


def forecast_rows(n_series: int, n_days: int, horizons: int, seed: int = 0) -> pd.DataFrame:
    """Forecasts as the pipeline makes them: every series, forecast date and horizon."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2020-01-01", periods=n_days)
    series = np.array([f"S{i:03d}" for i in range(n_series)])
    s, d, h = (a.ravel() for a in np.meshgrid(series, days, np.arange(1, horizons + 1)))
    yhat = 100 + rng.standard_normal(len(s)).cumsum() * 0.01
    return pd.DataFrame(
        {
            "series_id": s,
            "forecast_date": d,
            "target_date": d + pd.to_timedelta(h, unit="D"),
            "horizon": h,
            "yhat": yhat,
            "yhat_lower": yhat - 1.5,
            "yhat_upper": yhat + 1.5,
            "model": "lstm",
            "model_version": "bench-v1",
        }
    )


def raw_copy(engine: Engine, df: pd.DataFrame, run_id: str) -> None:
    """The baseline: Arrow -> CSV -> COPY into the table, nothing else."""
    data = pa.Table.from_pandas(
        df.assign(run_id=run_id, created_at=pd.Timestamp.now(tz="UTC"))[COLUMNS],
        preserve_index=False,
    )
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY forecasts ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)") as cp:
            for batch in data.to_batches(max_chunksize=100_000):
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, options)
                cp.write(buffer.getbuffer())


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE forecasts"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE forecasts"))


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def explain_ms(engine: Engine, series_id: str, runs: int = 7) -> tuple[float, str]:
    """Median execution time of the single-series latest-forecast query, and its plan."""
    query = text(
        "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM latest_forecasts WHERE series_id = :s "
        "ORDER BY target_date"
    )
    times, plan = [], ""
    with engine.connect() as conn:
        for _ in range(runs):
            lines = [r[0] for r in conn.execute(query, {"s": series_id})]
            plan = "\n".join(lines)
            found = re.search(r"Execution Time: ([\d.]+) ms", plan)
            assert found, plan
            times.append(float(found.group(1)))
    return statistics.median(times), plan


BACKTEST_MODELS = ["lstm", "lstm", "naive", "seasonal_naive", "linear", "ets", "arima"]
NEXT_VERSIONS = {"bench-v1": "bench-v3", "bench-v2": "bench-v4"}


def backtest_rows(n_series: int, origins: int = 40, horizons: int = 14, seed: int = 0):
    """A night's backtest rows as ``score_backtest`` makes them: every series, origin, horizon
    and model (the champion's and the challenger's LSTM, five baselines)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2020-01-01", periods=origins * 2)[::2]
    series = np.array([f"S{i:04d}" for i in range(n_series)])
    m = np.arange(len(BACKTEST_MODELS))
    s, d, h, k = (a.ravel() for a in np.meshgrid(series, days, np.arange(1, horizons + 1), m))
    actual = 100 + rng.standard_normal(len(s)).cumsum() * 0.01
    yhat = actual + rng.standard_normal(len(s))
    error = np.abs(actual - yhat)
    models = np.array(BACKTEST_MODELS)[k]
    versions = np.where(k == 0, "bench-v1", np.where(k == 1, "bench-v2", "baseline-" + models))
    return pd.DataFrame(
        {
            "series_id": s,
            "forecast_date": d,
            "target_date": d + pd.to_timedelta(h, unit="D"),
            "horizon": h,
            "model": models,
            "model_version": versions,
            "yhat": yhat,
            "yhat_lower": yhat - 1.3,
            "yhat_upper": yhat + 1.3,
            "actual": actual,
            "abs_error": error,
            "squared_error": error**2,
            "scaled_error": error / 0.8,
            "mase_scale": 0.8,
            "smape": 200 * error / (np.abs(actual) + np.abs(yhat)),
            "pinball_lower": 0.1 * error,
            "pinball_median": 0.5 * error,
            "pinball_upper": 0.1 * error,
            "covered": error < 1.3,
        }
    )


def bench_backtest(engine: Engine, label: str, df: pd.DataFrame) -> None:
    """Three nights of the writer, then the decay's two reads."""
    db.create_schema(engine)
    db.start_run(engine, "bench-run", "bench", dt.date(2020, 1, 1))
    # the next night's LSTMs are new versions (fine-tuned), its baselines' windows the same
    later = df.assign(model_version=df["model_version"].replace(NEXT_VERSIONS))
    for version in sorted(set(df["model_version"]) | set(later["model_version"])):
        db.upsert_model_version(engine, {"version": version, "kind": "full", "status": "x"})
    ids = sorted(set(df["series_id"]))
    night1, night2 = dt.date(2020, 6, 1), dt.date(2020, 6, 2)

    def write(rows: pd.DataFrame, day: dt.date) -> float:
        return timed(
            lambda: db.write_backtest_results(engine, rows, "bench-run", day, series_ids=ids)
        )

    figures = {
        "empty tables: every window new": write(df, night1),
        "next night: the LSTMs' windows new": write(later, night2),
        "rerun of that night: none new": write(later, night2),
    }
    for name, seconds in figures.items():
        print(f"  {label:10s} {name:36s} {seconds:6.2f} s  {len(df) / seconds:>10,.0f} rows/s")
    before = night2 + dt.timedelta(days=1)
    full = timed(lambda: db.read_latest_backtest(engine, ids, before))
    summary = timed(lambda: db.read_backtest_summary(engine, ids, before))
    print(
        f"  {label:10s} decay's read: every row {full:.2f} s, summary in SQL {summary:.2f} s "
        f"({full / summary:.0f}x)"
    )


def backtest_main(args: argparse.Namespace) -> None:
    df = backtest_rows(args.series)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(
        f"{len(df):,} backtest rows a night ({args.series} series x 40 origins x 14 horizons x "
        f"{len(BACKTEST_MODELS)} models); {load}"
    )
    with tempfile.TemporaryDirectory() as folder:
        engine = db.make_engine(f"sqlite:///{folder}/bench.db")
        try:
            bench_backtest(engine, "SQLite", df)
        finally:
            engine.dispose()
    if not args.no_postgres:
        name = f"bench_sql_{secrets.token_hex(4)}"
        admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = db.make_engine(make_url(args.url).set(database=name))
        try:
            bench_backtest(engine, "PostgreSQL", df)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="admin URL of a PostgreSQL server")
    parser.add_argument("--series", type=int, default=None, help="200; 100 with --backtest")
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--horizons", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backtest", action="store_true", help="a night's backtest_results")
    parser.add_argument("--no-postgres", action="store_true", help="--backtest on SQLite only")
    args = parser.parse_args()
    if args.backtest:
        args.series = args.series or 100
        backtest_main(args)
        return
    args.series = args.series or 200

    df = forecast_rows(args.series, args.days, args.horizons)
    name = f"bench_sql_{secrets.token_hex(4)}"
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.url).set(database=name)
    engine = db.make_engine(url)
    try:
        db.create_schema(engine)
        db.start_run(engine, "bench-run", "bench", dt.date(2020, 1, 1))
        db.upsert_model_version(engine, {"version": "bench-v1", "kind": "full", "status": "x"})
        print(
            f"{len(df):,} forecast rows ({args.series} series x {args.days} days x "
            f"{args.horizons} horizons) into {db.safe_url(url)}"
        )
        raw_times, writer_times = [], []
        runs = {
            "raw COPY": (raw_times, lambda: raw_copy(engine, df, "bench-run")),
            "writer": (writer_times, lambda: db.write_forecasts(engine, df, "bench-run")),
        }
        for i in range(args.repeats):
            order = list(runs) if i % 2 == 0 else list(reversed(runs))  # warm-up cancels out
            for label in order:
                reset(engine)
                times, work = runs[label]
                times.append(timed(work))
            print(
                f"  repeat {i + 1}: raw COPY {raw_times[-1]:.2f} s, writer {writer_times[-1]:.2f} s"
            )
        raw, writer = statistics.median(raw_times), statistics.median(writer_times)
        print(f"raw COPY   median {raw:6.2f} s  {len(df) / raw:>10,.0f} rows/s")
        print(f"writer     median {writer:6.2f} s  {len(df) / writer:>10,.0f} rows/s")
        print(f"writer speed / raw COPY speed = {raw / writer:.2f}  (goal >= 0.80)")

        rerun = timed(lambda: db.write_forecasts(engine, df, "bench-run"))
        print(f"writer rerun over the same {len(df):,} rows (delete + COPY): {rerun:.2f} s")
        slice_ = df.iloc[:50_000].assign(series_id=lambda d: "R" + d["series_id"])
        rows_path = timed(lambda: db.write_forecasts(engine, slice_, "bench-run", bulk_rows=10**9))
        copy_path = timed(lambda: db.write_forecasts(engine, slice_, "bench-run", bulk_rows=1))
        print(
            f"{len(slice_):,} rows: row path (executemany) {rows_path:.2f} s, "
            f"COPY path {copy_path:.2f} s ({rows_path / copy_path:.1f}x)"
        )

        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE forecasts"))
        series = df["series_id"].iloc[len(df) // 2]
        ms, plan = explain_ms(engine, series)
        print(
            f"latest_forecasts WHERE series_id = '{series}': {ms:.1f} ms median "
            f"EXPLAIN ANALYZE execution time (goal < 50 ms); plan:"
        )
        print("\n".join("    " + line for line in plan.splitlines()))
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
