"""Shared test fixtures."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

# --- Threads: torch's GNU OpenMP threads spin between parallel regions. Two test workers, each
# training with two threads on two cores, spin against each other: the model tests of
# tests/unit took 49-76 s on two workers against 10 s on one. Told to sleep instead
# (OMP_WAIT_POLICY=PASSIVE; read when torch loads libgomp, so set before the workers start,
# and inherited by every process a test starts), they take 10-11 s on two. On one worker the
# spinning wins (10 s against 14 s), so it is left alone there; a value already set is kept.


# --- Signals: a test run started in the background of a script (`cmd &` without job control,
# as a CI runner or `nohup` starts it) ignores SIGINT, and every child inherits the SIG_IGN.
# Prefect 3.9's worker stops on SIGTERM by sending itself SIGINT with the handler it started
# with restored: ignored, so each test that stopped a worker waited the 20 s grace, then killed
# it (tests/prefect_server.py). A Python handler is not inherited: with SIGINT handled here, a
# child starts with the default and Python installs its own, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    workers = getattr(config.option, "numprocesses", None)
    if workers not in (None, 0, 1):  # the workers inherit it (theirs changes nothing then)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# --- Databases: every SQL test runs on a SQLite file and on a throw-away PostgreSQL database.

PG_ADMIN_URL = os.environ.get(
    "PIPELINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def _pg_reachable(admin_url: str) -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        engine = create_engine(admin_url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin URL of a reachable PostgreSQL, starting the local cluster if needed."""
    reason = _pg_reachable(PG_ADMIN_URL)
    if reason is not None and Path("/etc/postgresql").is_dir():
        subprocess.run(_PG_START, shell=True, capture_output=True, timeout=60, check=False)
        reason = _pg_reachable(PG_ADMIN_URL)
    if reason is not None:
        safe = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        message = (
            f"PostgreSQL is not reachable at {safe} ({reason}). Start it "
            f"(`{_PG_START}`), point PIPELINE_TEST_PG_URL at a server, "
            "or set PIPELINE_SKIP_POSTGRES=1 to skip the PostgreSQL tests."
        )
        if os.environ.get("PIPELINE_SKIP_POSTGRES") == "1":
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    return PG_ADMIN_URL


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """URL of a fresh database ``test_fp_<random>`` on the server of ``admin_url``, dropped at
    the end (for fixtures of any scope)."""
    name = f"test_fp_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quoted}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        admin.dispose()


def for_prefect_server(url: str) -> str:
    """The same PostgreSQL database as Prefect's server names it (it speaks asyncpg). A
    Prefect server on its default SQLite file fails a write with "database is locked" whenever
    two overlap (a run's tasks and a worker on 2 cores), answers 503, and its clients back off
    for 2 s, 4 s, 8 s...: on PostgreSQL nothing waits."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a fresh database ``test_fp_<random>``, dropped after the test."""
    with pg_database(pg_admin_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'pipeline.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """An engine (pipeline_lib.db.make_engine) on an empty database, for each backend."""
    from pipeline_lib.db import make_engine

    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()
