"""Create or upgrade the schema: Alembic revisions for the tables, ``sql/views.sql`` for views.

``upgrade`` is what ``forecast-pipeline db upgrade`` runs, and what a flow runs at its start
unless ``database_auto_upgrade`` is off. In ONE transaction, under a lock so two processes
never migrate at once: a database made before migrations existed is stamped with the revision
its tables match; the BI views are dropped; pending revisions run; the views are created from
``sql/views.sql`` and its checksum recorded. A database already at head with the same views is
left alone (one cheap query), so BI queries are never blocked by a no-op upgrade.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, select, text

from pipeline_lib.db.engine import make_engine, read_views_sql, safe_url
from pipeline_lib.db.tables import schema_state
from pipeline_lib.db.upsert import upsert_rows
from pipeline_lib.errors import PipelineError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VIEWS_KEY = "views_sha256"
# pg_advisory_xact_lock key of the schema migration: "fcstmig" as a number
MIGRATION_LOCK = int.from_bytes(b"fcstmig", "big")


class SchemaOutOfDate(PipelineError, RuntimeError):
    """The database is behind the code and automatic upgrades are off."""


@dataclass(frozen=True)
class UpgradeResult:
    from_revision: str | None
    to_revision: str
    stamped: str | None  # revision a pre-migrations database was recognised as
    views_replaced: bool

    @property
    def changed(self) -> bool:
        return self.views_replaced or self.from_revision != self.to_revision


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.cache  # the revision files do not change while the process runs
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def legacy_revision(conn: Connection) -> str | None:
    """The revision that a database created before migrations existed matches, else None."""
    tables = set(inspect(conn).get_table_names())
    if "forecasts" not in tables:
        return None
    if "backtest_results" in tables:
        return "0003"
    return "0002" if "validation_results" in tables else "0001"


def view_names(statements: list[str]) -> list[str]:
    return [m.group(1) for s in statements if (m := re.match(r"CREATE VIEW (\w+)", s, re.I))]


def views_checksum(statements: list[str]) -> str:
    return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()


def _stored_checksum(conn: Connection) -> str | None:
    if not inspect(conn).has_table(schema_state.name):
        return None
    query = select(schema_state.c.value).where(schema_state.c.key == VIEWS_KEY)
    return conn.execute(query).scalar_one_or_none()


def is_current(engine: Engine) -> bool:
    """True when the database is at head and its views match ``sql/views.sql``."""
    statements = read_views_sql()
    with engine.connect() as conn:
        at_head = current_revision(conn) == head_revision()
        return at_head and _stored_checksum(conn) == views_checksum(statements)


def upgrade(engine: Engine, *, replace_views: bool = False) -> UpgradeResult:
    """Bring the database to head and its views to ``sql/views.sql``; see the module doc.

    ``replace_views`` recreates the views even when their checksum matches (e.g. after a DBA
    dropped one by hand).
    """
    statements = read_views_sql()
    checksum = views_checksum(statements)
    head = head_revision()
    # SQLite: foreign keys off while tables are copied (checked once the revisions ran)
    migration_engine = make_engine(engine.url, foreign_keys=False)
    try:
        with migration_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(text(f"pg_advisory_xact_lock({MIGRATION_LOCK})")))
            start = current_revision(conn)
            stamped = None
            if start is None and (stamped := legacy_revision(conn)) is not None:
                _alembic(conn, "stamp", stamped)
            current = start or stamped
            views_ok = _stored_checksum(conn) == checksum and not replace_views
            if current == head and views_ok:
                return UpgradeResult(start, head, stamped, views_replaced=False)
            existing = set(inspect(conn).get_view_names())
            for name in reversed(view_names(statements)):
                if name in existing:  # backtest_results is a table up to revision 0007
                    conn.execute(text(f"DROP VIEW {name}"))
            if current != head:
                _alembic(conn, "upgrade", "head")
            for statement in statements:
                conn.execute(text(statement))
            now = dt.datetime.now(dt.UTC)
            row = {"key": VIEWS_KEY, "value": checksum, "updated_at": now}
            upsert_rows(conn, schema_state, [row])
            if conn.dialect.name == "sqlite":
                _sqlite_foreign_key_check(conn)
        return UpgradeResult(start, head, stamped, views_replaced=True)
    finally:
        migration_engine.dispose()


def _alembic(conn: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    getattr(command, action)(config, revision)


def _sqlite_foreign_key_check(conn: Connection) -> None:
    problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        sample = [tuple(p) for p in problems[:5]]
        raise RuntimeError(
            f"the upgraded SQLite database breaks {len(problems)} foreign keys "
            f"(table, rowid, parent, fk id), e.g. {sample}; nothing was changed"
        )


def ensure_current(engine: Engine, *, auto_upgrade: bool = True) -> UpgradeResult | None:
    """Upgrade when behind (``auto_upgrade``), else raise SchemaOutOfDate naming the fix."""
    if is_current(engine):
        return None
    if auto_upgrade:
        return upgrade(engine)
    with engine.connect() as conn:
        have = current_revision(conn)
    raise SchemaOutOfDate(
        f"the database {safe_url(engine.url)} is at schema revision {have or 'none'}, the "
        f"code needs {head_revision()} with the current views: run `forecast-pipeline db "
        "upgrade` (automatic upgrades are off: database_auto_upgrade=false)"
    )


def upgrade_sql(url: str, start: str | None = None) -> str:
    """The DDL an upgrade to head would run, for a DBA to review (Alembic offline mode).

    ``start``: the revision the database is at (default: an empty database). The views follow.
    """
    config = alembic_config(url)
    buffer = io.StringIO()
    config.output_buffer = buffer
    command.upgrade(config, f"{start}:head" if start else "head", sql=True)
    return buffer.getvalue() + "\n".join(s + ";" for s in read_views_sql()) + "\n"


def create_schema(engine: Engine) -> UpgradeResult:
    """Create or upgrade the tables and views (``upgrade``); safe to run again."""
    return upgrade(engine)
