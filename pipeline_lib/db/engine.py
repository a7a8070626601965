"""Engines, for SQLite files and PostgreSQL alike, and the views script."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

VIEWS_SQL = Path(__file__).resolve().parents[2] / "sql" / "views.sql"


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str | URL, *, foreign_keys: bool = True) -> Engine:
    """An engine for ``url``; the URL is logged with its password hidden.

    SQLite: the file's folder is created; every transaction starts with ``BEGIN IMMEDIATE``, so
    concurrent writers queue on the database lock (up to 30 s) instead of failing mid-transaction
    on a lock upgrade; WAL journal, so BI readers do not block a writer; foreign keys enforced
    unless ``foreign_keys=False`` (migrations copy tables, which needs them off).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        _sqlite_setup(engine, foreign_keys)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    log.info("database engine for %s", safe_url(parsed))
    return engine


def _sqlite_setup(engine: Engine, foreign_keys: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]  # we BEGIN ourselves
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: object) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]


@contextmanager
def engine_scope(url: str) -> Iterator[Engine]:
    """An engine for one unit of work, disposed (its connections closed) at the end."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def split_sql(script: str) -> list[str]:
    """Statements of a SQL script: split at ``;`` ending a line, ``--`` comment lines dropped."""
    lines = [ln for ln in script.splitlines() if not ln.lstrip().startswith("--")]
    chunks = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [c.strip() for c in chunks if c.strip()]


def read_views_sql(path: Path = VIEWS_SQL) -> list[str]:
    """The view statements from ``sql/views.sql``, with a clear error when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(
            f"SQL views file not found: {path}. It lives at sql/views.sql in the repository "
            "root; run from a checkout (or an install that keeps the sql/ folder)."
        )
    return split_sql(path.read_text(encoding="utf-8"))
