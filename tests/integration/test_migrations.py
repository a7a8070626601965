"""Alembic migrations on SQLite and PostgreSQL: a new database, databases made before
migrations existed (one per earlier schema), a no-op rerun, the views, and sql/schema.sql."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from pipeline_lib import db
from pipeline_lib.db import migrate
from pipeline_lib.db.backtests import scores_of
from pipeline_lib.db.engine import read_views_sql, split_sql
from pipeline_lib.db.tables import metadata

ROOT = Path(__file__).resolve().parents[2]
VIEWS = {"latest_forecasts", "backtest_accuracy", "forecast_errors", "forecast_accuracy"}
VIEWS |= {"current_drift_alerts", "model_history", "latest_model_selections", "forecast_choices"}
VIEWS |= {"backtest_results"}


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to reach the metadata (tables, columns, types,
    nullability, keys, indexes, comments): nothing, when migrations and metadata agree."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return migrate.current_revision(conn)


def to_revision(engine: Engine, target: str) -> None:
    """Run the revisions up to ``target`` only, then forget Alembic: a database as an
    earlier release (which had no migrations) created it."""
    with engine.begin() as conn:
        migrate._alembic(conn, "upgrade", target)
        conn.execute(text("DROP TABLE alembic_version"))


def legacy_night(engine: Engine, run_id: str, start_run: bool = True) -> None:
    """A night's rows as an earlier release wrote them (no forecasts.model, no foreign keys);
    without ``start_run`` its forecast names a run that pipeline_runs lacks."""
    statements = [
        "INSERT INTO model_versions (version, kind, status, created_at) "
        "VALUES ('v1', 'full', 'champion', CURRENT_TIMESTAMP)",
        "INSERT INTO forecasts (series_id, forecast_date, target_date, horizon, yhat, "
        "model_version, run_id, created_at) VALUES ('SP500', '2024-01-02', '2024-01-03', 1, "
        "4700.5, 'v1', :run_id, CURRENT_TIMESTAMP)",
    ]
    if start_run:
        statements.insert(
            0,
            "INSERT INTO pipeline_runs (run_id, flow, as_of, status, started_at) "
            "VALUES (:run_id, 'nightly', '2024-01-02', 'succeeded', CURRENT_TIMESTAMP)",
        )
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"run_id": run_id} if ":run_id" in statement else {})


def test_a_new_database_is_created_at_head_and_a_rerun_changes_nothing(
    db_engine: Engine,
) -> None:
    first = migrate.upgrade(db_engine)
    assert (first.from_revision, first.to_revision, first.stamped) == (None, "0009", None)
    assert first.changed and first.views_replaced
    assert differences(db_engine) == []
    insp = inspect(db_engine)
    assert VIEWS <= set(insp.get_view_names())
    checks = [
        c["name"]
        for t in ("model_versions", "pipeline_runs")
        for c in insp.get_check_constraints(t)
    ]
    assert checks == ["ck_model_versions_kind", "ck_pipeline_runs_status"]
    assert migrate.is_current(db_engine)
    again = migrate.upgrade(db_engine)
    assert not again.changed and not again.views_replaced
    assert migrate.ensure_current(db_engine) is None


@pytest.mark.parametrize("legacy", ["0001", "0002", "0003"])
def test_a_database_from_before_migrations_is_recognised_and_upgraded_with_its_rows(
    db_engine: Engine, legacy: str
) -> None:
    to_revision(db_engine, legacy)
    legacy_night(db_engine, run_id="r1")
    result = migrate.upgrade(db_engine)
    assert (result.from_revision, result.stamped, result.to_revision) == (None, legacy, "0009")
    assert revision(db_engine) == "0009"
    assert differences(db_engine) == []
    with db_engine.connect() as conn:
        row = conn.execute(text("SELECT model, yhat, model_version FROM forecasts")).one()
        latest = conn.execute(text("SELECT series_id, yhat FROM latest_forecasts")).all()
    assert tuple(row) == ("lstm", 4700.5, "v1")  # rows written before 0003 came from the LSTM
    assert [tuple(r) for r in latest] == [("SP500", 4700.5)]


def test_rows_that_would_break_a_new_foreign_key_stop_the_upgrade_and_change_nothing(
    db_engine: Engine,
) -> None:
    to_revision(db_engine, "0003")
    legacy_night(db_engine, run_id="ghost-run", start_run=False)
    with pytest.raises(RuntimeError, match=r"forecasts\.run_id -> pipeline_runs.*ghost-run"):
        migrate.upgrade(db_engine)
    assert revision(db_engine) is None  # not even the stamp was kept
    tables = set(inspect(db_engine).get_table_names())
    assert "actuals" not in tables and "alembic_version" not in tables


def test_views_are_replaced_when_sql_views_changes(db_engine: Engine) -> None:
    migrate.upgrade(db_engine)
    with db_engine.begin() as conn:  # as if views.sql had changed since the last upgrade
        conn.execute(text("UPDATE schema_state SET value = 'old' WHERE key = 'views_sha256'"))
        conn.execute(text("DROP VIEW model_history"))
    assert not migrate.is_current(db_engine)
    result = migrate.ensure_current(db_engine)
    assert result is not None and result.views_replaced and result.from_revision == "0009"
    assert "model_history" in inspect(db_engine).get_view_names()
    assert migrate.is_current(db_engine)


def test_without_auto_upgrade_a_stale_database_is_refused_with_the_fix(db_engine: Engine) -> None:
    with pytest.raises(migrate.SchemaOutOfDate, match="forecast-pipeline db upgrade"):
        migrate.ensure_current(db_engine, auto_upgrade=False)
    assert inspect(db_engine).get_table_names() == []


def test_every_revision_downgrades_and_upgrades_again(db_engine: Engine) -> None:
    migrate.upgrade(db_engine)
    with db_engine.begin() as conn:
        for name in reversed(migrate.view_names(read_views_sql())):
            conn.execute(text(f"DROP VIEW {name}"))
        migrate._alembic(conn, "downgrade", "base")
    assert set(inspect(db_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(db_engine)
    assert differences(db_engine) == []


def test_offline_sql_renders_the_whole_upgrade_for_review() -> None:
    sql = migrate.upgrade_sql("postgresql://reviewer@localhost/forecasts")
    assert "CREATE TABLE actuals" in sql and "fk_forecasts_run_id_pipeline_runs" in sql
    assert "CREATE VIEW model_history" in sql


@pytest.mark.postgres
def test_sql_schema_file_builds_what_the_migrations_build(pg_url: str) -> None:
    """sql/schema.sql and sql/views.sql, run by hand, give the tables, keys, indexes, comments
    and views that `forecast-pipeline db upgrade` gives."""
    engine = create_engine(pg_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA from_sql"))
        conn.execute(text("SET LOCAL search_path TO from_sql"))
        for path in ("sql/schema.sql", "sql/views.sql"):
            for statement in split_sql((ROOT / path).read_text(encoding="utf-8")):
                conn.execute(text(statement))
    insp = inspect(engine)

    def shape(schema: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"views": sorted(insp.get_view_names(schema=schema))}
        for table in sorted(metadata.tables):
            out[table] = {
                "columns": sorted(  # by name: a column added by a revision comes last
                    (c["name"], str(c["type"]), c["nullable"], c.get("comment"))
                    for c in insp.get_columns(table, schema=schema)
                ),
                "pk": insp.get_pk_constraint(table, schema=schema),
                "fks": sorted(
                    (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                    for f in insp.get_foreign_keys(table, schema=schema)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]))
                    for i in insp.get_indexes(table, schema=schema)
                ),
                "checks": sorted(c["name"] for c in insp.get_check_constraints(table, schema)),
                "comment": insp.get_table_comment(table, schema=schema)["text"],
            }
        return out

    assert shape("from_sql") == shape(None)
    assert set(insp.get_table_names(schema="from_sql")) == set(metadata.tables)
    engine.dispose()


def test_sqlite_database_keeps_foreign_keys_on_for_the_pipeline(tmp_path: Path) -> None:
    from pipeline_lib.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_0008_keeps_every_backtest_row_of_a_0007_database_and_downgrades_again(
    db_engine: Engine,
) -> None:
    """The table's rows come back from the view after the upgrade (scaled_error from each
    series' scale, to the last bits), and from the table again after the downgrade."""
    with db_engine.begin() as conn:
        migrate._alembic(conn, "upgrade", "0007")
    columns = "backtest_date, model_version, series_id, forecast_date, target_date, model, "
    columns += "horizon, yhat, yhat_lower, yhat_upper, actual, abs_error, squared_error, "
    columns += "scaled_error, smape, pinball_lower, pinball_median, pinball_upper, covered, "
    columns += "run_id, created_at"
    rows = []
    for night, origins in (("2024-01-02", ("2023-12-28", "2023-12-29")), ("2024-01-03", ())):
        for series, scale in (("A", 2.0), ("B", 0.5)):
            for origin in origins or ("2023-12-29",):
                for h, target in ((1, "2024-01-01"), (2, "2024-01-02")):
                    error = 1.5 * h + (series == "B")
                    values = (night, "v1", series, origin, target, "lstm", h, 100.0 + error)
                    values += (99.0, 101.0 + h, 100.0, error, error**2, error / scale, 1.0)
                    values += (0.1, 0.2, 0.3, h == 1, "r1", "2024-01-03 00:00:00")
                    rows.append(values)
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pipeline_runs (run_id, flow, as_of, status, started_at) "
                "VALUES ('r1', 'nightly', '2024-01-02', 'succeeded', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO model_versions (version, kind, status, created_at) "
                "VALUES ('v1', 'full', 'champion', CURRENT_TIMESTAMP)"
            )
        )
        marks = ", ".join(f":p{i}" for i in range(len(rows[0])))
        conn.execute(
            text(f"INSERT INTO backtest_results ({columns}) VALUES ({marks})"),
            [{f"p{i}": value for i, value in enumerate(r)} for r in rows],
        )
        query = f"SELECT {columns} FROM backtest_results ORDER BY 1, 2, 3, 4, 5"
        before = [tuple(r) for r in conn.execute(text(query))]
    assert len(before) == len(rows) == 12

    result = migrate.upgrade(db_engine)
    assert (result.from_revision, result.to_revision) == ("0007", "0009")
    assert differences(db_engine) == []
    assert "backtest_results" in inspect(db_engine).get_view_names()

    def same(got: list[tuple[Any, ...]]) -> None:
        assert len(got) == len(before)
        for new, old in zip(got, before, strict=True):
            assert new[:13] == old[:13] and new[14:] == old[14:]
            assert new[13] == pytest.approx(old[13], rel=1e-12)

    with db_engine.connect() as conn:
        same([tuple(r) for r in conn.execute(text(query))])
        windows = conn.execute(text("SELECT COUNT(*) FROM backtest_windows")).scalar()
    assert windows == 6  # each night's windows of its own (two origins, two series; one more)
    # 0009: each migrated night's scores, as the writer computes them from the night's rows
    view = pd.read_sql(text("SELECT * FROM backtest_results"), db_engine)
    for night, rows_of_night in view.groupby("backtest_date"):
        stored = db.read_backtest_summary(
            db_engine, ["A", "B"], pd.Timestamp(night).date() + dt.timedelta(days=1)
        )
        pd.testing.assert_frame_equal(stored, scores_of(rows_of_night), rtol=1e-12)

    with db_engine.begin() as conn:
        for name in reversed(migrate.view_names(read_views_sql())):
            conn.execute(text(f"DROP VIEW {name}"))
        migrate._alembic(conn, "downgrade", "0007")
    assert "backtest_results" in inspect(db_engine).get_table_names()
    assert not {"backtest_windows", "backtest_scores"} & set(inspect(db_engine).get_table_names())
    with db_engine.connect() as conn:
        same([tuple(r) for r in conn.execute(text(query))])
