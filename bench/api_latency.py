"""Latency of the read API (``forecast-pipeline serve``) at a million forecast rows.

A fresh SQLite file (and, with ``--postgres URL``, a throw-away PostgreSQL database created
through that admin URL) is filled by the product's writers (``write_forecasts``,
``write_actuals``) with ``--series`` x ``--days`` business days x ``--horizons`` forecast rows
(200 x 250 x 20 = 1,000,000 by default) and each series' actuals. Then the console script
``forecast-pipeline serve`` runs as a subprocess on a free loopback port over that database
(its access log goes to a file), and one client (httpx, keep-alive) sends, after 10 untimed
requests, ``--requests`` requests of each kind for random series (seeded):

- ``/forecasts/latest?series=S``: the series' newest forecast (20 rows);
- ``/forecasts?series=S&from=D&to=D+29``: 30 days of forecast dates (about 22 x 20 rows);
- ``/series`` and ``/health`` (every series; 20 requests each): reads over the whole table.

Printed per database and endpoint: p50, p95 and max milliseconds, measured by the client
(HTTP included); the query plans of the API's statements (``EXPLAIN QUERY PLAN`` on SQLite,
``EXPLAIN ANALYZE`` on PostgreSQL, for one series); and ``uptime`` before and after, since
the figures move with the machine's load. Goal: the latest forecast in well under 50 ms.

    python bench/api_latency.py                               # SQLite, 1M rows, ~2 min
    python bench/api_latency.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/api_latency.py --series 20 --requests 50     # a smoke test
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sql_write  # noqa: E402  (bench/sql_write.py: the same synthetic forecasts)

from pipeline_lib import db
from pipeline_lib.api import queries

CLI = Path(sys.executable).with_name("forecast-pipeline")
RANGE_DAYS = 30


def forecast_rows(n_series: int, n_days: int, horizons: int, seed: int = 0) -> pd.DataFrame:
    """Forecasts as the pipeline makes them (``bench/sql_write.py``'s), with the models a
    per-bucket choice publishes: the LSTM at h=1, the linear model after."""
    rows = sql_write.forecast_rows(n_series, n_days, horizons, seed)
    return rows.assign(model=np.where(rows["horizon"] == 1, "lstm", "linear"))


def actual_rows(n_series: int, n_days: int) -> pd.DataFrame:
    days = pd.bdate_range("2020-01-01", periods=n_days)
    series = np.array([f"S{i:03d}" for i in range(n_series)])
    s, d = (a.ravel() for a in np.meshgrid(series, days))
    return pd.DataFrame({"series_id": s, "target_date": d, "actual": 100.0})


def fill(engine: Engine, forecasts: pd.DataFrame, actuals: pd.DataFrame) -> float:
    """The schema, a run and a model version, then the rows by the product's writers."""
    start = time.perf_counter()
    db.create_schema(engine)
    db.start_run(engine, "bench-run", "bench", dt.date(2020, 1, 1))
    db.upsert_model_version(engine, {"version": "bench-v1", "kind": "full", "status": "x"})
    db.write_forecasts(engine, forecasts, "bench-run")
    db.write_actuals(engine, actuals, "bench-run")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - start


def plans(engine: Engine, series_id: str, day: dt.date) -> list[str]:
    """The plan of each of the API's statements for one series."""
    statements = {
        "latest": queries.latest_forecast_query(series_id),
        "range": queries.range_query(series_id, day, day + dt.timedelta(days=RANGE_DAYS - 1)),
        "series": queries.summary_query(),
        "health, newest date": queries.overview_queries()[0],
        "health, series count": queries.overview_queries()[1],
    }
    postgres = engine.dialect.name == "postgresql"
    explain = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    lines = []
    with engine.connect() as conn:
        for name, statement in statements.items():
            sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
            rows = conn.execute(text(explain + sql)).all()
            shown = [r[0] if postgres else r[-1] for r in rows]
            lines.append(f"  {name}:")
            lines += [f"      {line}" for line in shown]
    return lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(folder: Path, database_url: str) -> Iterator[str]:
    """``forecast-pipeline serve`` over ``database_url``; its base URL until the block ends."""
    port = free_port()
    config = folder / "serve.toml"
    config.write_text(
        f'data_dir = "{(folder / "data").as_posix()}"\n[serve]\nport = {port}\n'
        f'database_url = "{database_url}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    log = (folder / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(CLI), "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}: {folder / 'serve.log'}")
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not answer within 120 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def timings(client: httpx.Client, paths: list[str]) -> list[float]:
    """Milliseconds of each request (status 200 checked), after 10 untimed ones."""
    for path in paths[:10]:
        client.get(path).raise_for_status()
    out = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return out


def measure(base: str, args: argparse.Namespace, label: str) -> None:
    rng = random.Random(0)
    ids = [f"S{i:03d}" for i in range(args.series)]
    days = pd.bdate_range("2020-01-01", periods=args.days).date
    last_start = days[-1] - dt.timedelta(days=RANGE_DAYS - 1)
    starts = [d for d in days if d <= last_start] or [days[0]]
    n = args.requests

    def ranged() -> str:
        first = rng.choice(starts)
        last = first + dt.timedelta(days=RANGE_DAYS - 1)
        return f"/forecasts?series={rng.choice(ids)}&from={first}&to={last}"

    kinds = {
        "/forecasts/latest": [f"/forecasts/latest?series={rng.choice(ids)}" for _ in range(n)],
        f"/forecasts ({RANGE_DAYS} days)": [ranged() for _ in range(n)],
        "/series": ["/series"] * 20,
        "/health": ["/health"] * 20,
    }
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, paths in kinds.items():
            ms = sorted(timings(client, paths))
            p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
            print(
                f"  {label:10s} {name:24s} n={len(ms):<4d} p50 {statistics.median(ms):7.1f} ms"
                f"  p95 {p95:7.1f} ms  max {ms[-1]:7.1f} ms"
            )


def bench(engine: Engine, url: str, label: str, args: argparse.Namespace, folder: Path) -> None:
    forecasts = forecast_rows(args.series, args.days, args.horizons)
    seconds = fill(engine, forecasts, actual_rows(args.series, args.days))
    print(f"{label}: {len(forecasts):,} forecast rows written in {seconds:.1f} s")
    middle = forecasts["forecast_date"].iloc[len(forecasts) // 2].date()
    for line in plans(engine, forecasts["series_id"].iloc[len(forecasts) // 2], middle):
        print(line)
    engine.dispose()
    with served(folder, url) as base:
        measure(base, args, label)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=250, help="business days of forecasts")
    parser.add_argument("--horizons", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="per endpoint")
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server")
    args = parser.parse_args()
    print(f"before: {uptime()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'data' / 'pipeline.db'}"
        bench(db.make_engine(url), url, "SQLite", args, folder)
        if args.postgres:
            name = f"bench_api_{secrets.token_hex(4)}"
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            pg = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            try:
                bench(db.make_engine(pg), pg, "PostgreSQL", args, folder)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(f"after:  {uptime()}")


if __name__ == "__main__":
    main()
