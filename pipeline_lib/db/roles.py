"""The read-only role for BI tools: applies ``sql/roles.sql`` through SQLAlchemy (PostgreSQL).

The SQL file is written for psql (``psql -v bi_role=forecast_bi -f sql/roles.sql <db>``); this
module runs the same statements from Python, so that both paths grant exactly the same thing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from pipeline_lib.db.engine import split_sql

log = logging.getLogger(__name__)

ROLES_SQL = Path(__file__).resolve().parents[2] / "sql" / "roles.sql"
DEFAULT_BI_ROLE = "forecast_bi"
PSQL_VARIABLE = "bi_role"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# psql's :"var" (identifier), :'var' (literal), and any other colon (escaped for text()).
_PSQL_TOKEN = re.compile(r""":"(\w+)"|:'(\w+)'|:""")


def validate_identifier(name: str) -> str:
    """``name`` if it is a safe, unquoted PostgreSQL identifier, else ValueError.

    Identifiers from configuration end up in SQL text (roles cannot be bound parameters), so
    only lower-case ASCII letters, digits and ``_`` are allowed, at most 63 characters.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"invalid SQL identifier {name!r}: use 1 to 63 characters from a-z, 0-9 and _, "
            "not starting with a digit"
        )
    return name


def read_roles_sql(path: Path = ROLES_SQL) -> str:
    """The text of ``sql/roles.sql``, with a clear error when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(
            f"SQL roles file not found: {path}. It lives at sql/roles.sql in the repository "
            "root; run from a checkout (or an install that keeps the sql/ folder)."
        )
    return path.read_text(encoding="utf-8")


def render_roles_sql(
    role: str = DEFAULT_BI_ROLE, dialect: Dialect | None = None, path: Path = ROLES_SQL
) -> list[tuple[str, dict[str, Any]]]:
    """The statements of ``sql/roles.sql`` for ``text()``, each with its bound parameters.

    psql's ``:"bi_role"`` becomes the quoted, validated identifier and ``:'bi_role'`` a bound
    parameter; every other colon is escaped so ``text()`` keeps it. psql commands (lines that
    start with a backslash) are dropped.
    """
    role = validate_identifier(role)
    quoted = (dialect or postgresql.dialect()).identifier_preparer.quote_identifier(role)
    lines = read_roles_sql(path).splitlines()
    script = "\n".join(ln for ln in lines if not ln.lstrip().startswith("\\"))

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name is None:
            return r"\:"
        if name != PSQL_VARIABLE:
            raise ValueError(f"{path}: unknown psql variable {name!r}; only {PSQL_VARIABLE!r}")
        return quoted if match.group(1) else f":{PSQL_VARIABLE}"

    statements = []
    for statement in split_sql(script):
        rendered = _PSQL_TOKEN.sub(substitute, statement)
        params = {PSQL_VARIABLE: role} if f":'{PSQL_VARIABLE}'" in statement else {}
        statements.append((rendered, params))
    return statements


def grant_read_only(engine: Engine, role: str = DEFAULT_BI_ROLE) -> None:
    """Create (if missing) the NOLOGIN role ``role`` that may only SELECT schema ``public``.

    Runs ``sql/roles.sql`` in one transaction. Connect as the user that owns the tables and
    runs the migrations: only it can grant on them, and the default privileges it sets cover
    the views it recreates later. PostgreSQL only (SQLite has no roles).
    """
    if engine.dialect.name != "postgresql":
        raise ValueError(
            f"grant_read_only needs PostgreSQL, not {engine.dialect.name}: "
            "other databases have no roles to grant to"
        )
    statements = render_roles_sql(role, engine.dialect)
    with engine.begin() as conn:
        for statement, params in statements:
            conn.execute(text(statement), params)
    log.info("role %s may now read, and only read, schema public", role)
