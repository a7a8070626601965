"""Render the tables' DDL as plain SQL, for ``sql/schema.sql``.

Regenerate after changing :mod:`pipeline_lib.db.tables`::

    python -m pipeline_lib.db.ddl > sql/schema.sql

A test checks that the committed file equals ``render_ddl("postgresql")``.
"""

from __future__ import annotations

import sys

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import (
    CreateIndex,
    CreateTable,
    ExecutableDDLElement,
    SetColumnComment,
    SetTableComment,
)

from pipeline_lib.db.tables import metadata

_DIALECTS: dict[str, type[Dialect]] = {
    "postgresql": postgresql.dialect,
    "sqlite": sqlite.dialect,
}

HEADER = """-- Tables of the forecasting pipeline ({dialect}).
-- Generated from pipeline_lib/db/tables/ by `python -m pipeline_lib.db.ddl`; do not edit.
-- The BI views are in sql/views.sql."""


def render_ddl(dialect_name: str = "postgresql") -> str:
    """CREATE TABLE, CREATE INDEX and (where supported) COMMENT statements, in order."""
    try:
        dialect = _DIALECTS[dialect_name]()
    except KeyError:
        raise ValueError(
            f"unknown dialect {dialect_name!r}; use one of {sorted(_DIALECTS)}"
        ) from None
    blocks = [HEADER.format(dialect=dialect_name)]
    for table in metadata.sorted_tables:
        statements: list[ExecutableDDLElement] = [CreateTable(table)]
        statements += [CreateIndex(i) for i in sorted(table.indexes, key=lambda i: str(i.name))]
        if dialect.supports_comments:
            statements += [SetTableComment(table)] if table.comment else []
            statements += [SetColumnComment(c) for c in table.columns if c.comment]
        blocks.append("\n".join(_tidy(str(s.compile(dialect=dialect))) + ";" for s in statements))
    return "\n\n".join(blocks) + "\n"


def _tidy(sql: str) -> str:
    """Strip trailing blanks and use four spaces for SQLAlchemy's tabs."""
    lines = [line.rstrip().replace("\t", "    ") for line in sql.strip().splitlines()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(render_ddl(args[0] if args else "postgresql"))


if __name__ == "__main__":
    main()
