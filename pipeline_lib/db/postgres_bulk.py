"""PostgreSQL's bulk paths of the idempotent writes (:mod:`pipeline_lib.db.upsert`): COPY
through psycopg 3, a replace's scopes deleted in one statement under transaction-scoped
advisory locks, and large upserts staged in a temporary table. Identifiers come from the Table
objects only; values are bound parameters or COPY data.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Table, text

from pipeline_lib.db.row_checks import key_columns

LOCK_BUCKETS = 64  # advisory locks per table: scopes hash into this many


def copies(conn: Connection) -> bool:
    """PostgreSQL through psycopg 3, whose cursors stream COPY; other drivers take the row path."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def lock_scopes(conn: Connection, table: Table, scopes: Sequence[tuple[Any, ...]]) -> None:
    """Transaction-scoped advisory locks on the scopes' hash buckets, in ascending order."""
    table_key = _int32(zlib.crc32(table.name.encode()))
    buckets = sorted({zlib.crc32(repr(s).encode()) % LOCK_BUCKETS for s in scopes})
    lock = text("SELECT pg_advisory_xact_lock(:t, :b)")
    for bucket in buckets:
        conn.execute(lock, {"t": table_key, "b": bucket})


def _int32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def delete_scopes(
    conn: Connection, table: Table, scope: Sequence[str], scopes: Sequence[tuple[Any, ...]]
) -> None:
    """One DELETE joined to the scope keys, passed as arrays (bound parameters)."""
    if not scopes:
        return
    dialect = conn.dialect
    arrays = ", ".join(
        f"CAST(:k{i} AS {table.c[c].type.compile(dialect)}[])" for i, c in enumerate(scope)
    )
    aliases = ", ".join(f"s{i}" for i in range(len(scope)))
    match = " AND ".join(f"t.{_quote(conn, c)} = s.s{i}" for i, c in enumerate(scope))
    sql = f"DELETE FROM {_quote(conn, table.name)} AS t USING unnest({arrays}) AS s({aliases}) "
    params = {f"k{i}": [s[i] for s in scopes] for i in range(len(scope))}
    conn.execute(text(sql + f"WHERE {match}"), params)


def copy_rows(conn: Connection, target: str, table: Table, data: pa.Table) -> None:
    """COPY ``data`` into ``target`` (quoted name) as CSV, in batches of 100,000 rows."""
    columns = ", ".join(_quote(conn, c) for c in data.column_names)
    driver = conn.connection.driver_connection  # None only once the pool detached it
    assert driver is not None, "an open Connection has its driver connection"
    cursor = driver.cursor()  # psycopg 3: COPY FROM STDIN
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    try:
        with cursor.copy(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in data.to_batches(max_chunksize=100_000):
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, options)
                copy.write(buffer.getbuffer())
    finally:
        cursor.close()


def staged_upsert(conn: Connection, table: Table, data: pa.Table) -> None:
    stage = _quote(conn, f"stage_{table.name}")
    name = _quote(conn, table.name)
    conn.execute(text(f"CREATE TEMPORARY TABLE {stage} (LIKE {name}) ON COMMIT DROP"))
    copy_rows(conn, stage, table, data)
    keys = key_columns(table)
    columns = [_quote(conn, c) for c in data.column_names]
    updates = [
        f"{q} = EXCLUDED.{q}"
        for c, q in zip(data.column_names, columns, strict=True)
        if c not in keys
    ]
    key_list = ", ".join(_quote(conn, k) for k in keys)
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    conn.execute(
        text(
            f"INSERT INTO {name} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {stage} "
            f"ORDER BY {key_list} ON CONFLICT ({key_list}) {action}"
        )
    )
    conn.execute(text(f"DROP TABLE {stage}"))
