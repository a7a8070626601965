"""Dialect-aware upserts (INSERT ... ON CONFLICT) and keyed replaces, for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam
from sqlalchemy.dialects import postgresql, sqlite


@contextmanager
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection in a transaction: a new one for an Engine, the caller's for a Connection.

    Writers take either, so a caller can group several writes into one transaction
    (``with engine.begin() as conn: write_a(conn, ...); write_b(conn, ...)``).
    """
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.begin() as conn:
            yield conn


def upsert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    update_columns: Sequence[str] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE, for SQLite and PostgreSQL."""
    if not rows:
        return
    name = conn.dialect.name
    if name == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif name == "sqlite":
        stmt = sqlite.insert(table)
    else:
        raise NotImplementedError(f"upserts are implemented for sqlite and postgresql, not {name}")
    keys = [c.name for c in table.primary_key.columns]
    columns = update_columns if update_columns is not None else list(rows[0])
    set_ = {c: stmt.excluded[c] for c in columns if c not in keys}
    if set_:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_=set_)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt, list(rows))


def replace_rows(
    bind: Engine | Connection, table: Table, rows: list[dict[str, Any]], scope: Sequence[str]
) -> int:
    """Delete the rows sharing a ``scope`` key with ``rows``, upsert ``rows``; one transaction."""
    keys = [c.name for c in table.primary_key.columns]
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        if any(row[k] is None for k in keys):
            raise ValueError(f"{table.name}: key columns {keys} must not be null: {row}")
        key = tuple(row[k] for k in keys)
        if key in seen:
            raise ValueError(f"{table.name}: duplicate key {dict(zip(keys, key, strict=True))}")
        seen.add(key)
    scopes = sorted({tuple(row[c] for c in scope) for row in rows})
    delete = table.delete().where(and_(*(table.c[c] == bindparam(f"k_{c}") for c in scope)))
    with transaction(bind) as conn:
        if scopes:
            conn.execute(
                delete, [{f"k_{c}": s for c, s in zip(scope, k, strict=True)} for k in scopes]
            )
        upsert_rows(conn, table, rows)
    return len(rows)
