"""Engines, for SQLite files and PostgreSQL alike, and the views script."""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url

from pipeline_lib.errors import DatabaseError, StorageError, storage_errors

log = logging.getLogger(__name__)

VIEWS_SQL = Path(__file__).resolve().parents[2] / "sql" / "views.sql"


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


# What people write for PostgreSQL, without a driver: SQLAlchemy reads it as psycopg2 (or knows
# no "postgres" dialect at all), while the driver this project installs is psycopg 3.
_PLAIN_POSTGRES = re.compile(r"^(postgresql|postgres)(\+[A-Za-z0-9_]+)?://", re.IGNORECASE)
_POSTGRES_DRIVERS = ("psycopg2", "psycopg")  # SQLAlchemy's default first, then psycopg 3


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def driver_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed: ``postgresql://`` and ``postgres://``
    become ``postgresql+psycopg2://`` when psycopg2 is installed, else ``postgresql+psycopg://``
    (psycopg 3, the project's driver); an explicit driver is kept as given (``postgres+x://``
    is spelled ``postgresql+x://``). Every other URL is returned unchanged.

    The one place URLs get their driver: :func:`make_engine` and ``Settings.db_url`` call it.
    Raises :class:`DatabaseError` saying what to install when no PostgreSQL driver is.
    """
    match = _PLAIN_POSTGRES.match(url)
    if match is None:
        return url
    rest = url[match.end() :]
    if match[2]:  # an explicit driver
        return f"postgresql{match[2]}://{rest}"
    for driver in _POSTGRES_DRIVERS:  # the URL's driver name is its module's name
        if _installed(driver):
            return f"postgresql+{driver}://{rest}"
    raise DatabaseError(
        f"database URL {safe_url(url)}: no PostgreSQL driver is installed: install psycopg 3 "
        "(pip install 'forecast-pipeline[postgres]' or 'psycopg[binary]') or psycopg2"
    )


def make_engine(url: str | URL, *, foreign_keys: bool = True) -> Engine:
    """An engine for ``url``; the URL is logged with its password hidden.

    PostgreSQL: a URL without a driver gets the installed one (:func:`driver_url`).
    SQLite: the file's folder is created; every transaction starts with ``BEGIN IMMEDIATE``, so
    concurrent writers queue on the database lock (up to 30 s) instead of failing mid-transaction
    on a lock upgrade; WAL journal, so BI readers do not block a writer; foreign keys enforced
    unless ``foreign_keys=False`` (migrations copy tables, which needs them off). A file that
    cannot be opened or written (read-only or full disk, no permission) raises a
    :class:`StorageError` naming the file and its folder.
    """
    if isinstance(url, str):
        url = driver_url(url)
    elif url.get_backend_name() == "postgresql" and "+" not in url.drivername:
        url = make_url(driver_url(url.render_as_string(hide_password=False)))
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            with storage_errors("creating the SQLite database's folder", str(folder)):
                folder.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        _sqlite_setup(engine, foreign_keys)
    else:
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except ModuleNotFoundError as exc:  # e.g. postgresql+psycopg2:// without psycopg2
            raise DatabaseError(
                f"database URL {safe_url(parsed)}: its driver is not installed "
                f"(No module named {exc.name!r}): install it, or write the URL with an "
                "installed driver (postgresql+psycopg:// for psycopg 3)"
            ) from exc
        _connect_errors(engine)
    log.info("database engine for %s", safe_url(parsed))
    return engine


def _connect_errors(engine: Engine) -> None:
    """A server that cannot be reached, a database that does not exist, a refused login: a
    DatabaseError naming the database (password hidden) and what to check, not a bug."""
    where = safe_url(engine.url)

    @event.listens_for(engine, "handle_error")
    def _unreachable(context: Any) -> None:
        if context.connection is not None or context.is_pre_ping:
            return  # a statement failed on a working connection; a pre-ping reconnects
        original = context.original_exception
        if type(original).__name__ != "OperationalError":  # the DB-API's: no connection
            return
        reason = " ".join(str(original).split())
        raise DatabaseError(
            f"database {where}: cannot connect ({reason}); check the URL (database_url, "
            "PIPELINE_DATABASE_URL), that the server runs and that the user may log in"
        ) from context.sqlalchemy_exception or original


# SQLite's messages when its file or its folder cannot be written: they name neither.
_SQLITE_STORAGE = (
    "unable to open database file",
    "attempt to write a readonly database",
    "database or disk is full",
    "disk i/o error",
)


def _sqlite_storage_error(database: str, exc: BaseException) -> StorageError | None:
    """A StorageError naming the SQLite file, its folder and what to do, for the errors above."""
    text = str(exc)
    if not any(known in text.lower() for known in _SQLITE_STORAGE):
        return None
    path = Path(database).expanduser().resolve()
    return StorageError(
        f"SQLite database {path}: {text}: its folder {path.parent} must exist, be writable and "
        "have free space (SQLite also writes -wal and -shm files there); fix that, or point "
        "database_url (PIPELINE_DATABASE_URL) or data_dir at a writable place",
        path=str(path),
    )


def _sqlite_setup(engine: Engine, foreign_keys: bool) -> None:
    database = engine.url.database or ""

    @event.listens_for(engine, "handle_error")
    def _storage(context: Any) -> None:  # on connect too: "unable to open database file"
        wrapped = _sqlite_storage_error(database, context.original_exception)
        if wrapped is not None and database and database != ":memory:":
            raise wrapped from context.sqlalchemy_exception or context.original_exception

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
