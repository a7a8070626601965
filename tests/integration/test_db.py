"""The SQL layer on SQLite and PostgreSQL: schema, idempotent writers, views, generated DDL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, Table, inspect, select, text

from pipeline_lib.db import (
    actuals,
    create_schema,
    drift_metrics,
    finish_run,
    forecasts,
    make_engine,
    model_versions,
    pipeline_runs,
    start_run,
    upsert_model_version,
    write_actuals,
    write_drift_metrics,
    write_forecasts,
)
from pipeline_lib.db.ddl import render_ddl

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "sql" / "schema.sql"
D1, D2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def forecast_frame(
    forecast_date: dt.date, horizons: int = 3, level: float = 100.0, series: str = "SP500"
) -> pd.DataFrame:
    """Forecasts for horizons 1..n, with pandas/numpy types as a model would produce them."""
    h = np.arange(1, horizons + 1)
    return pd.DataFrame(
        {
            "series_id": series,
            "forecast_date": pd.Timestamp(forecast_date),
            "target_date": pd.to_datetime([forecast_date + dt.timedelta(days=int(i)) for i in h]),
            "horizon": h,
            "yhat": level + h,
            "yhat_lower": np.where(h == 1, np.nan, level + h - 1.0),
            "yhat_upper": level + h + 1.0,
            "model_version": "v1",
        }
    )


def rows(engine: Engine, table: Table, *order: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(*order))]


RUNS = ("run-a", "run-b", "run-c")


@pytest.fixture
def bare(db_engine: Engine) -> Engine:
    """The schema and no rows."""
    create_schema(db_engine)
    return db_engine


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """The schema, the runs ``RUNS`` and model version ``v1`` that the rows refer to."""
    create_schema(db_engine)
    for run in RUNS:
        start_run(db_engine, run, "nightly", D1)
    upsert_model_version(db_engine, {"version": "v1", "kind": "full", "status": "champion"})
    return db_engine


def test_create_schema_is_idempotent(engine: Engine) -> None:
    create_schema(engine)
    names = set(inspect(engine).get_table_names())
    assert {"forecasts", "drift_metrics", "model_versions", "pipeline_runs"} <= names
    assert "latest_forecasts" in inspect(engine).get_view_names()


def test_write_forecasts_replaces_rows_of_a_rerun(engine: Engine) -> None:
    assert write_forecasts(engine, forecast_frame(D1, horizons=3), "run-a") == 3
    write_forecasts(engine, forecast_frame(D1, horizons=3, level=200.0), "run-b")
    got = rows(engine, forecasts, forecasts.c.target_date)
    assert len(got) == 3
    assert [r["yhat"] for r in got] == [201.0, 202.0, 203.0]
    assert {r["run_id"] for r in got} == {"run-b"}
    assert got[0]["yhat_lower"] is None
    assert isinstance(got[0]["target_date"], dt.date) and got[0]["horizon"] == 1


def test_write_forecasts_drops_stale_horizons(engine: Engine) -> None:
    write_forecasts(engine, forecast_frame(D1, horizons=5), "run-a")
    write_forecasts(engine, forecast_frame(D1, horizons=2), "run-b")
    assert len(rows(engine, forecasts)) == 2


def test_forecast_dates_and_series_coexist(engine: Engine) -> None:
    write_forecasts(engine, forecast_frame(D1), "run-a")
    write_forecasts(engine, forecast_frame(D2), "run-b")
    write_forecasts(engine, forecast_frame(D2, series="WTI"), "run-b")
    assert len(rows(engine, forecasts)) == 9


def test_write_forecasts_rejects_duplicate_keys(engine: Engine) -> None:
    df = forecast_frame(D1)
    with pytest.raises(ValueError, match="duplicate keys"):
        write_forecasts(engine, pd.concat([df, df]), "run-a")
    assert rows(engine, forecasts) == []


def test_latest_forecasts_view_takes_the_newest_forecast_date(engine: Engine) -> None:
    write_forecasts(engine, forecast_frame(D1, horizons=3, level=100.0), "run-a")
    write_forecasts(engine, forecast_frame(D2, horizons=3, level=200.0), "run-b")
    with engine.connect() as conn:
        got = conn.execute(
            text(
                "SELECT target_date, forecast_date, yhat FROM latest_forecasts ORDER BY target_date"
            )
        ).all()
    # D1 forecasts Jan 3..5, D2 forecasts Jan 4..6: Jan 3 only from D1, Jan 4-6 from D2.
    assert [(str(t)[:10], str(f)[:10], y) for t, f, y in got] == [
        ("2024-01-03", "2024-01-02", 101.0),
        ("2024-01-04", "2024-01-03", 201.0),
        ("2024-01-05", "2024-01-03", 202.0),
        ("2024-01-06", "2024-01-03", 203.0),
    ]


def drift_frame(flag: bool, features: tuple[str, ...] = ("log_return", "temp_max")) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "series_id": "SP500",
                "feature": f,
                "metric": m,
                "value": np.float64(0.5),
                "threshold": t,
                "is_drift": np.bool_(flag),
            }
            for f in features
            for m, t in (("psi", 0.2), ("ks_statistic", None))
        ]
    )


def test_drift_metrics_replace_per_date_and_series(engine: Engine) -> None:
    write_drift_metrics(engine, drift_frame(False), "run-a", forecast_date=D1)
    write_drift_metrics(engine, drift_frame(True, ("log_return",)), "run-b", forecast_date=D1)
    write_drift_metrics(engine, drift_frame(False).assign(forecast_date=D2), "run-c")
    got = rows(engine, drift_metrics, drift_metrics.c.forecast_date, drift_metrics.c.feature)
    assert len(got) == 2 + 4
    d1 = [r for r in got if r["forecast_date"] == D1]
    assert {r["feature"] for r in d1} == {"log_return"}
    assert all(r["is_drift"] is True and r["run_id"] == "run-b" for r in d1)
    assert {r["threshold"] for r in d1} == {0.2, None}


def test_current_drift_alerts_lists_the_breached_thresholds_of_the_newest_check(
    engine: Engine,
) -> None:
    write_drift_metrics(engine, drift_frame(True), "run-a", forecast_date=D1)
    write_drift_metrics(engine, drift_frame(True, ("log_return",)), "run-b", forecast_date=D2)
    with engine.connect() as conn:
        alerts = conn.execute(
            text("SELECT series_id, forecast_date, feature, metric FROM current_drift_alerts")
        ).all()
    # the newest check only (D2), and psi but not ks_statistic (flagged, no threshold)
    assert [(r[0], str(r[1]), r[2], r[3]) for r in alerts] == [
        ("SP500", str(D2), "log_return", "psi")
    ]


def test_start_and_finish_run(bare: Engine) -> None:
    engine = bare
    start_run(engine, "r1", "nightly", D1, details={"series": ["SP500"]})
    start_run(engine, "r1", "nightly", D1)  # a retry restarts it
    (run,) = rows(engine, pipeline_runs)
    assert run["status"] == "running" and run["finished_at"] is None
    finish_run(engine, "r1", "failed", message="boom", details={"stage": "ingest"})
    (run,) = rows(engine, pipeline_runs)
    assert (run["status"], run["message"]) == ("failed", "boom")
    assert json.loads(run["details"]) == {"stage": "ingest"}
    assert run["finished_at"] is not None and run["as_of"] == D1
    with pytest.raises(LookupError):
        finish_run(engine, "nope", "succeeded")
    with pytest.raises(ValueError):
        finish_run(engine, "r1", "done")


def test_upsert_model_version(bare: Engine) -> None:
    engine = bare
    record = {
        "version": "v1",
        "kind": "full",
        "status": "challenger",
        "train_start": pd.Timestamp("2020-01-01"),
        "train_end": np.datetime64("2023-12-31"),
        "data_fingerprint": "abc",
        "hyperparameters": {"hidden_size": np.int64(32)},
        "metrics": {"mae": np.float64(1.5)},
        "path": Path("/models/v1"),
    }
    upsert_model_version(engine, record)
    upsert_model_version(engine, {"version": "v1", "status": "champion"})
    upsert_model_version(
        engine,
        {"version": "v2", "kind": "finetune", "status": "challenger", "parent_version": "v1"},
    )
    v1, v2 = rows(engine, model_versions, model_versions.c.version)
    assert v1["status"] == "champion" and v1["kind"] == "full"
    assert v1["train_end"] == dt.date(2023, 12, 31) and v1["path"] == "/models/v1"
    assert json.loads(v1["hyperparameters"]) == {"hidden_size": 32}
    assert v2["parent_version"] == "v1" and v2["created_at"] is not None
    with pytest.raises(ValueError, match="kind"):
        upsert_model_version(engine, {"version": "v3", "kind": "partial", "status": "x"})
    with pytest.raises(LookupError, match="not registered"):
        upsert_model_version(engine, {"version": "v9", "status": "retired"})


def test_make_engine_creates_sqlite_folder(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'x.db'}")
    create_schema(engine)
    assert (tmp_path / "a" / "b" / "x.db").is_file()
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_schema_sql_is_generated_from_the_metadata() -> None:
    assert SCHEMA_SQL.read_text(encoding="utf-8") == render_ddl("postgresql"), (
        "sql/schema.sql is stale: run `python -m pipeline_lib.db.ddl > sql/schema.sql`"
    )


def awkward_frame(series: str) -> pd.DataFrame:
    """Values that trip CSV and float formatting: many digits, tiny and huge, NaN, and a
    model_version with a comma and quotes."""
    df = forecast_frame(D1, horizons=6, series=series)
    df["yhat"] = [0.1 + 0.2, 1e-300, 123456789.123456789, -2.5e20, 1 / 3, 7.0]
    df["yhat_upper"] = [np.nan, 1.0, 2.0, np.nan, 3.0, 4.0]
    return df.assign(model_version="v1", model='naive,"seasonal"')


def test_the_copy_path_writes_exactly_what_the_row_path_writes(engine: Engine) -> None:
    """bulk_rows=1 sends the rows by COPY on PostgreSQL (SQLite always takes the row path)."""
    write_forecasts(engine, awkward_frame("BY_ROWS"), "run-a", bulk_rows=10**9)
    write_forecasts(engine, awkward_frame("BY_COPY"), "run-a", bulk_rows=1)
    got = pd.DataFrame(rows(engine, forecasts, forecasts.c.series_id, forecasts.c.target_date))
    by_rows, by_copy = (
        got[got.series_id == s].drop(columns=["series_id", "created_at"]).reset_index(drop=True)
        for s in ("BY_ROWS", "BY_COPY")
    )
    pd.testing.assert_frame_equal(by_copy, by_rows)
    assert by_copy["yhat"].tolist() == awkward_frame("x")["yhat"].tolist()  # bit for bit
    assert by_copy["model"].iloc[0] == 'naive,"seasonal"'
    assert by_copy["yhat_upper"].isna().sum() == 2
    written_at = pd.to_datetime(got["created_at"], utc=True)  # SQLite: naive, in UTC
    assert (written_at > pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5)).all()
    # a rerun by COPY with fewer horizons replaces the scope: no stale horizon is left
    write_forecasts(engine, forecast_frame(D1, horizons=2, series="BY_COPY"), "run-b", bulk_rows=1)
    again = [r for r in rows(engine, forecasts) if r["series_id"] == "BY_COPY"]
    assert [r["horizon"] for r in again] == [1, 2] and {r["run_id"] for r in again} == {"run-b"}


def test_actuals_are_upserted_and_restated_by_either_path(engine: Engine) -> None:
    days = pd.date_range("2024-01-01", periods=5, freq="D")
    first = pd.DataFrame({"series_id": "SP500", "target_date": days, "actual": np.arange(5.0)})
    assert write_actuals(engine, first, "run-a") == 5
    restated = first.iloc[3:].assign(actual=[30.0, 40.0])  # late corrections of two days
    assert write_actuals(engine, restated, "run-b", bulk_rows=1) == 2  # staging table + upsert
    stored = rows(engine, actuals, actuals.c.target_date)
    assert [r["actual"] for r in stored] == [0.0, 1.0, 2.0, 30.0, 40.0]
    assert [r["run_id"] for r in stored] == ["run-a"] * 3 + ["run-b"] * 2


def test_bad_frames_are_refused_with_the_column_and_rows_and_nothing_is_written(
    engine: Engine,
) -> None:
    good = forecast_frame(D1)
    with pytest.raises(ValueError, match=r"forecasts: missing columns \['yhat'\]"):
        write_forecasts(engine, good.drop(columns="yhat"), "run-a")
    with pytest.raises(ValueError, match=r"forecasts\.yhat: cannot convert rows \[\(1, 'abc'\)\]"):
        write_forecasts(engine, good.assign(yhat=[1.0, "abc", 3.0]), "run-a")
    with pytest.raises(ValueError, match=r"forecasts\.target_date must not be null.*rows \[2\]"):
        write_forecasts(engine, good.assign(target_date=[D1, D2, None]), "run-a")
    with pytest.raises(LookupError, match=r"forecasts\.run_id: \['never-started'\] not in"):
        write_forecasts(engine, good, "never-started", bulk_rows=1)
    with pytest.raises(LookupError, match=r"forecasts\.model_version: \['v7'\] not in"):
        write_forecasts(engine, good.assign(model_version="v7"), "run-a")
    assert rows(engine, forecasts) == []


def test_a_transaction_that_deadlocks_is_retried_whole(engine: Engine) -> None:
    from sqlalchemy.exc import OperationalError

    from pipeline_lib.db import run_in_transaction

    class Deadlock(Exception):
        sqlstate = "40P01"

    attempts = []

    def work(conn: Any) -> int:
        attempts.append(1)
        write_forecasts(conn, forecast_frame(D1), "run-a")
        if len(attempts) < 3:
            raise OperationalError("INSERT ...", {}, Deadlock("deadlock detected"))
        return len(attempts)

    assert run_in_transaction(engine, work) == 3
    assert len(rows(engine, forecasts)) == 3  # the failed attempts were rolled back


@pytest.mark.postgres
def test_the_database_password_is_never_logged_or_printed(
    pg_url: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """Trust authentication ignores the password, so a URL can carry one and still connect."""
    from sqlalchemy.engine import make_url

    from flows.cli import main
    from pipeline_lib.config import load_settings
    from pipeline_lib.db.migrate import SchemaOutOfDate, ensure_current

    password = "s3cr3t-Pa55word"
    url = make_url(pg_url).set(password=password).render_as_string(hide_password=False)
    monkeypatch.setenv("PIPELINE_DATABASE_URL", url)
    caplog.set_level("DEBUG")
    settings = load_settings()
    assert settings.db_url == url and password not in repr(settings)
    assert password not in settings.model_dump_json()
    engine = make_engine(url)
    with pytest.raises(SchemaOutOfDate) as refused:
        ensure_current(engine, auto_upgrade=False)
    engine.dispose()
    assert main(["db", "upgrade"]) == 0 and main(["db", "current"]) == 0
    out, err = capsys.readouterr()
    assert "upgraded empty -> 0009" in out and "***" in out
    everything = out + err + caplog.text + str(refused.value)
    assert password not in everything
