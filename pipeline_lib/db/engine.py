"""Engines and schema set-up, for SQLite files and PostgreSQL alike."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from pipeline_lib.db.tables import metadata

log = logging.getLogger(__name__)

VIEWS_SQL = Path(__file__).resolve().parents[2] / "sql" / "views.sql"


def make_engine(url: str) -> Engine:
    """An engine for ``url``. For a SQLite file: its folder is created, foreign keys are on.

    The URL is logged with its password hidden.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    log.info("database engine for %s", parsed.render_as_string(hide_password=True))
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


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


def create_schema(engine: Engine) -> None:
    """Create the tables (if missing) and (re)create the views. Safe to run again."""
    statements = read_views_sql()
    metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
