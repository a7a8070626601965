"""What the read API asks the database: SQLAlchemy Core queries on ``forecasts`` and
``actuals`` (tables every login of the read-only BI role may SELECT, see sql/roles.sql), and
the engine it asks through.

Each query reads one series through a primary key: ``forecasts`` (series_id, forecast_date,
target_date) answers a series' latest forecast and a range of forecast dates; ``actuals``
(series_id, target_date) its recent actuals. ``latest_forecasts`` (the newest forecast per
target date) is not what "the latest forecast" means here, and its window function reads
every row of the series.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Select, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from pipeline_lib import schema
from pipeline_lib.db.engine import make_engine, safe_url
from pipeline_lib.db.tables import actuals, forecasts
from pipeline_lib.errors import DatabaseError

if TYPE_CHECKING:
    from pipeline_lib.config import Settings

# a forecast row as the API returns it: the SQL table's columns, what produced it last
FORECAST_FIELDS = (*schema.FORECAST_COLUMNS, "model", "model_version")
_COLUMNS = [forecasts.c[name] for name in FORECAST_FIELDS]


def read_url(settings: Settings) -> str:
    """``serve.database_url`` (e.g. a login of the BI role), else the pipeline's own URL."""
    secret = settings.serve.database_url
    if secret is not None and secret.get_secret_value():
        from pipeline_lib.db.engine import driver_url

        return driver_url(secret.get_secret_value())
    return settings.db_url


@dataclass
class Reader:
    """One pool of read-only connections for the app; ``where``: the URL, password hidden."""

    engine: Engine
    where: str

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":  # BEGIN READ ONLY: a second guard
                conn.execution_options(postgresql_readonly=True)
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def open_reader(url: str) -> Reader:
    """A pooled engine that only reads; it connects on the first query.

    PostgreSQL: :func:`pipeline_lib.db.make_engine` (the installed driver, pre-ping, a clear
    error when the server cannot be reached), transactions ``READ ONLY``. SQLite: the file is
    opened read-only (``mode=ro``), never created, and without ``make_engine``'s
    ``BEGIN IMMEDIATE``, which would take the write lock for every read and queue the API's
    requests behind, and in front of, a nightly run's writes (WAL lets readers and a writer
    go on together).
    """
    parsed = make_url(url)
    where = safe_url(parsed)
    if parsed.get_backend_name() != "sqlite":
        return Reader(make_engine(url), where)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise DatabaseError(f"database URL {where}: the read API needs a SQLite file path")
    uri = f"{Path(database).expanduser().resolve().as_uri()}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool)
    return Reader(engine, where)


def _row(mapping: Any) -> dict[str, Any]:
    """A result row as a dict; NaN and infinite floats as None (JSON has neither)."""
    out = dict(mapping)
    for key, value in out.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
    return out


def _latest_date(series_id: Any) -> Any:
    return (
        select(func.max(forecasts.c.forecast_date))
        .where(forecasts.c.series_id == series_id)
        .scalar_subquery()
    )


def latest_forecast_query(series_id: str) -> Select:
    """The rows of the series' newest forecast date, by target date."""
    return (
        select(*_COLUMNS)
        .where(forecasts.c.series_id == series_id)
        .where(forecasts.c.forecast_date == _latest_date(series_id))
        .order_by(forecasts.c.target_date)
    )


def range_query(series_id: str, start: dt.date, end: dt.date) -> Select:
    """The rows of the series whose forecast date is in [start, end], by forecast date and
    target date."""
    return (
        select(*_COLUMNS)
        .where(forecasts.c.series_id == series_id)
        .where(forecasts.c.forecast_date.between(start, end))
        .order_by(forecasts.c.forecast_date, forecasts.c.target_date)
    )


def _series_ids() -> Any:
    """A CTE of the distinct series ids of ``forecasts``, plus one NULL that ends it.

    A loose index scan: each step asks the primary key for the smallest id above the last
    one, so the ids of 1,000,000 rows cost one index probe per series instead of a read of
    every row (neither SQLite nor PostgreSQL skips through an index for ``DISTINCT``).
    """
    inner = forecasts.alias("above")
    ids = select(func.min(forecasts.c.series_id).label("series_id")).cte("ids", recursive=True)
    following = (
        select(func.min(inner.c.series_id))
        .where(inner.c.series_id > ids.c.series_id)
        .scalar_subquery()
    )
    return ids.union_all(select(following).where(ids.c.series_id.is_not(None)))


def summary_query() -> Select:
    """Per series and model of its newest forecast date: that date and the row count."""
    ids = _series_ids()
    newest = (
        select(
            ids.c.series_id,
            _latest_date(ids.c.series_id).label("latest"),
        )
        .where(ids.c.series_id.is_not(None))
        .subquery("newest")
    )
    return (
        select(
            forecasts.c.series_id,
            forecasts.c.forecast_date,
            forecasts.c.model,
            func.count().label("rows"),
        )
        .join(
            newest,
            (forecasts.c.series_id == newest.c.series_id)
            & (forecasts.c.forecast_date == newest.c.latest),
        )
        .group_by(forecasts.c.series_id, forecasts.c.forecast_date, forecasts.c.model)
        .order_by(forecasts.c.series_id, forecasts.c.model)
    )


def latest_forecast(conn: Connection, series_id: str) -> list[dict[str, Any]]:
    return [_row(r) for r in conn.execute(latest_forecast_query(series_id)).mappings()]


def forecast_range(
    conn: Connection, series_id: str, start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    return [_row(r) for r in conn.execute(range_query(series_id, start, end)).mappings()]


def has_forecasts(conn: Connection, series_id: str) -> bool:
    """Whether the series has any published forecast (one primary-key probe)."""
    query = select(forecasts.c.series_id).where(forecasts.c.series_id == series_id).limit(1)
    return conn.execute(query).first() is not None


def series_summaries(conn: Connection) -> list[dict[str, Any]]:
    """Every series with a forecast: its newest forecast date, the rows of that date (its
    horizons) and the models that made them, by id."""
    found: dict[str, dict[str, Any]] = {}
    for r in conn.execute(summary_query()).mappings():
        entry = found.setdefault(
            r["series_id"],
            {"series_id": r["series_id"], "forecast_date": r["forecast_date"], "horizons": 0},
        )
        entry["horizons"] += int(r["rows"])
        entry.setdefault("models", []).append(r["model"])
    return list(found.values())


def overview_queries() -> tuple[Select, Select]:
    """The newest forecast date of any series (the forecast_date index) and the number of
    series with a forecast (the loose index scan of :func:`_series_ids`)."""
    ids = _series_ids()
    return (
        select(func.max(forecasts.c.forecast_date)),
        select(func.count(ids.c.series_id)),  # COUNT skips the NULL that ends the CTE
    )


def overview(conn: Connection) -> dict[str, Any]:
    latest, count = (conn.execute(query).scalar() for query in overview_queries())
    return {"latest_forecast_date": latest, "series_count": int(count or 0)}


def recent_actuals(
    conn: Connection, series_id: str, start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    """The series' actuals with a target date in [start, end], oldest first."""
    query = (
        select(actuals.c.target_date, actuals.c.actual)
        .where(actuals.c.series_id == series_id)
        .where(actuals.c.target_date.between(start, end))
        .order_by(actuals.c.target_date)
    )
    return [_row(r) for r in conn.execute(query).mappings()]
