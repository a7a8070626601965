"""The read-only BI role (sql/roles.sql): a login in it can SELECT schema public and do nothing
else, applied from Python or with psql, and it stays so across re-runs and view upgrades."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from pipeline_lib.db import create_schema, make_engine, start_run, upgrade
from pipeline_lib.db.roles import (
    ROLES_SQL,
    grant_read_only,
    render_roles_sql,
    validate_identifier,
)

WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass
class BiSetup:
    """A throw-away database with the schema, and the names of the BI group role and login."""

    url: str
    admin: Engine
    role: str
    user: str


@pytest.fixture
def bi(pg_url: str, pg_admin_url: str) -> Iterator[BiSetup]:
    """The pipeline schema with a run in it, and random role names dropped after the test.

    Roles are cluster-wide, so they outlive the database: their privileges in it are dropped
    first (a role that holds privileges cannot be dropped), then the roles, even on failure.
    """
    suffix = secrets.token_hex(4)
    setup = BiSetup(pg_url, make_engine(pg_url), f"forecast_bi_{suffix}", f"bi_user_{suffix}")
    try:
        create_schema(setup.admin)
        start_run(setup.admin, "r1", "nightly", dt.date(2024, 1, 2))
        yield setup
    finally:
        setup.admin.dispose()
        _drop_roles(pg_url, pg_admin_url, [setup.user, setup.role])


def _drop_roles(db_url: str, admin_url: str, roles: list[str]) -> None:
    """Drop the roles' privileges in ``db_url``'s database, then the roles themselves."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    local = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            existing = conn.execute(
                text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
                {"names": roles},
            ).scalars()
            quoted = [admin.dialect.identifier_preparer.quote(r) for r in existing]
        if quoted:
            with local.connect() as conn:
                conn.execute(text(f"DROP OWNED BY {', '.join(quoted)}"))
            with admin.connect() as conn:
                for name in quoted:
                    conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
    finally:
        local.dispose()
        admin.dispose()


def login_engine(bi: BiSetup) -> Engine:
    """An engine that logs in as a new member of the BI role (trust auth: no password)."""
    with bi.admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{bi.user}" LOGIN IN ROLE "{bi.role}"'))
    return make_engine(make_url(bi.url).set(username=bi.user).render_as_string(hide_password=False))


def assert_denied(engine: Engine, statement: str) -> None:
    """``statement`` fails with insufficient privilege (and changes nothing)."""
    with engine.connect() as conn:
        with pytest.raises(ProgrammingError, match="permission denied|must be owner") as err:
            conn.execute(text(statement))
        assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege), statement


def relations(engine: Engine) -> list[str]:
    """The tables and views of schema public."""
    found = inspect(engine)
    return found.get_table_names(schema="public") + found.get_view_names(schema="public")


def assert_reads_everything(admin: Engine, reader: Engine) -> None:
    """``reader`` can SELECT every table and view the admin sees in schema public."""
    names = relations(admin)
    assert {"pipeline_runs", "forecasts", "latest_forecasts", "backtest_accuracy"} <= set(names)
    with reader.connect() as conn:
        for name in names:
            conn.execute(text(f'SELECT * FROM "{name}" LIMIT 1')).all()
        assert conn.execute(text("SELECT run_id FROM pipeline_runs")).scalars().all() == ["r1"]


# --- No database needed.


def test_validate_identifier() -> None:
    assert validate_identifier("forecast_bi") == "forecast_bi"
    assert validate_identifier("_" + "a" * 62) == "_" + "a" * 62
    for bad in ("bi; DROP TABLE x", "BI", "", "a" * 64, "1bi", "bi-role", 'bi"'):
        with pytest.raises(ValueError, match="invalid SQL identifier"):
            validate_identifier(bad)


def test_rendered_statements_bind_the_literal_and_quote_the_identifier() -> None:
    statements = render_roles_sql("forecast_bi")
    sql = "\n".join(s for s, _ in statements)
    assert ":'bi_role'" not in sql and ':"bi_role"' not in sql and "\\set" not in sql
    assert 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "forecast_bi"' in sql
    set_config = [(s, p) for s, p in statements if "set_config" in s]
    assert set_config == [(set_config[0][0], {"bi_role": "forecast_bi"})]
    assert ":bi_role" in set_config[0][0] and "forecast_bi" not in set_config[0][0]
    do_blocks = [s for s, _ in statements if s.startswith("DO")]
    assert len(do_blocks) == 3 and all(s.endswith("$$") for s in do_blocks)
    with pytest.raises(ValueError, match="invalid SQL identifier"):
        render_roles_sql("x; DROP TABLE forecasts")


def test_grant_read_only_needs_postgresql() -> None:
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        grant_read_only(make_engine("sqlite://"))


# --- PostgreSQL.


@pytest.mark.postgres
def test_bi_login_reads_but_cannot_write_or_change_the_schema(bi: BiSetup) -> None:
    grant_read_only(bi.admin, bi.role)
    reader = login_engine(bi)
    try:
        assert_reads_everything(bi.admin, reader)
        assert_denied(
            reader,
            "INSERT INTO pipeline_runs (run_id, flow, as_of, status, started_at) "
            "VALUES ('r2', 'nightly', '2024-01-03', 'running', now())",
        )
        assert_denied(reader, "UPDATE pipeline_runs SET status = 'failed'")
        assert_denied(reader, "DELETE FROM pipeline_runs")
        assert_denied(reader, "TRUNCATE pipeline_runs")
        assert_denied(reader, "CREATE TABLE bi_scratch (a integer)")
        assert_denied(reader, "CREATE VIEW bi_view AS SELECT 1 AS a")
        assert_denied(reader, "ALTER TABLE pipeline_runs ADD COLUMN bi integer")
        assert_denied(reader, "DROP TABLE pipeline_runs")
        assert_denied(reader, "DROP VIEW latest_forecasts")
        with reader.connect() as conn:
            for name in relations(bi.admin):
                for privilege in WRITES:
                    allowed = conn.execute(
                        text("SELECT has_table_privilege(:t, :p)"),
                        {"t": f'public."{name}"', "p": privilege},
                    ).scalar()
                    assert allowed is False, (name, privilege)
    finally:
        reader.dispose()
    with bi.admin.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pipeline_runs")).scalar() == 1
        role = conn.execute(
            text("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = :r"), {"r": bi.role}
        ).one()
    assert tuple(role) == (False, False)


@pytest.mark.postgres
def test_bi_role_sees_nothing_outside_schema_public(bi: BiSetup) -> None:
    with bi.admin.begin() as conn:
        conn.execute(text("CREATE SCHEMA private"))
        conn.execute(text("CREATE TABLE private.secrets AS SELECT 1 AS a"))
    grant_read_only(bi.admin, bi.role)
    reader = login_engine(bi)
    try:
        assert_denied(reader, "SELECT * FROM private.secrets")
    finally:
        reader.dispose()


@pytest.mark.postgres
def test_grant_is_idempotent_and_revokes_writes_granted_by_hand(bi: BiSetup) -> None:
    grant_read_only(bi.admin, bi.role)
    with bi.admin.begin() as conn:
        conn.execute(text(f'GRANT INSERT, DELETE ON pipeline_runs TO "{bi.role}"'))
    grant_read_only(bi.admin, bi.role)
    grant_read_only(bi.admin, bi.role)
    reader = login_engine(bi)
    try:
        assert_reads_everything(bi.admin, reader)
        assert_denied(reader, "DELETE FROM pipeline_runs")
    finally:
        reader.dispose()
    with bi.admin.connect() as conn:
        leftover = conn.execute(text("SELECT current_setting('forecast_pipeline.bi_role', true)"))
        assert leftover.scalar() in (None, "")


@pytest.mark.postgres
def test_views_recreated_by_a_schema_upgrade_stay_readable(bi: BiSetup) -> None:
    """Upgrades drop and recreate every view (as the same user): default privileges apply."""
    grant_read_only(bi.admin, bi.role)
    with bi.admin.begin() as conn:
        conn.execute(text("DROP VIEW latest_forecasts"))
        conn.execute(text("CREATE TABLE added_later (a integer)"))
    assert upgrade(bi.admin, replace_views=True).views_replaced
    reader = login_engine(bi)
    try:
        assert_reads_everything(bi.admin, reader)
        with reader.connect() as conn:
            conn.execute(text("SELECT * FROM added_later")).all()
        assert_denied(reader, "INSERT INTO added_later VALUES (1)")
    finally:
        reader.dispose()


@pytest.mark.postgres
def test_refuses_to_make_the_admin_read_only(bi: BiSetup) -> None:
    admin_user = make_url(bi.url).username
    assert admin_user is not None
    with pytest.raises(DBAPIError, match="refusing to make role"):
        grant_read_only(bi.admin, admin_user)
    start_run(bi.admin, "r2", "nightly", dt.date(2024, 1, 3))  # still writes


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_runs_the_file(bi: BiSetup) -> None:
    url = make_url(bi.url)
    psql_url = f"postgresql://{url.username}@{url.host}:{url.port or 5432}/{url.database}"
    command = ["psql", psql_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]
    for _ in range(2):  # and again: idempotent
        done = subprocess.run(
            [*command, "-v", f"bi_role={bi.role}", "-f", str(ROLES_SQL)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    missing = subprocess.run(
        [*command, "-f", str(ROLES_SQL)], capture_output=True, text=True, timeout=60, check=False
    )
    assert missing.returncode != 0 and "bi_role" in missing.stdout + missing.stderr
    reader = login_engine(bi)
    try:
        assert_reads_everything(bi.admin, reader)
        assert_denied(reader, "UPDATE pipeline_runs SET status = 'failed'")
        assert_denied(reader, "CREATE TABLE bi_scratch (a integer)")
    finally:
        reader.dispose()
