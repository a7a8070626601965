"""Rows checked before a write, so a bad one is named (table, column, rows or values) instead
of the database refusing the write less clearly: NOT NULL columns without nulls, primary keys
not repeated, foreign keys present in their parent tables.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Table, bindparam, select

REFERENCE_BATCH = 10_000  # values per foreign-key check query


def key_columns(table: Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def check_rows(table: Table, data: pa.Table) -> None:
    """Raise ValueError naming the column and rows when a NOT NULL column holds nulls, or the
    rows repeat a primary key."""
    for column in table.columns:
        if column.nullable or column.name not in data.column_names:
            continue
        values = data[column.name]
        if values.null_count:
            where = [i for i, null in enumerate(values.is_null().to_pylist()) if null][:5]
            raise ValueError(
                f"{table.name}.{column.name} must not be null; {values.null_count} rows have "
                f"none, e.g. rows {where}"
            )
    keys = key_columns(table)
    counts = data.group_by(keys).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts["count_all"], 1))
    if dupes.num_rows:
        raise ValueError(
            f"{table.name}: {dupes.num_rows} primary keys {keys} repeat in one write "
            "(duplicate keys), e.g. "
            f"{dupes.select(keys).slice(0, 3).to_pylist()}"
        )


def check_references(conn: Connection, table: Table, data: pa.Table) -> None:
    """Raise LookupError naming the values of a foreign key column that its parent table lacks
    (e.g. a run id never started), before the database refuses the write less clearly."""
    for fk in table.foreign_keys:
        column = fk.parent.name
        if column not in data.column_names:
            continue
        wanted = sorted(set(data[column].drop_null().to_pylist()))
        if not wanted:
            continue
        parent = fk.column
        query = select(parent).where(parent.in_(bindparam("values", expanding=True)))
        found: set[Any] = set()
        for i in range(0, len(wanted), REFERENCE_BATCH):  # SQLite's bound-parameter limit
            batch = wanted[i : i + REFERENCE_BATCH]
            found.update(r[0] for r in conn.execute(query, {"values": batch}))
        missing = [w for w in wanted if w not in found]
        if missing:
            raise LookupError(
                f"{table.name}.{column}: {missing[:5]} not in {parent.table.name}.{parent.name}"
                f" ({len(missing)} missing); write those first (start_run, upsert_model_version)"
            )
