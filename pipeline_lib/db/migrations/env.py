"""Alembic environment: runs the revisions in ``versions/`` on the connection it is given.

Run migrations through :func:`pipeline_lib.db.migrate.upgrade` (``forecast-pipeline db
upgrade``): it holds the migration lock, drops and recreates the BI views around the revisions
and passes the connection in ``config.attributes["connection"]``. Offline mode
(``forecast-pipeline db upgrade --sql``) renders the SQL for a DBA to review instead.
"""

from __future__ import annotations

from alembic import context

from pipeline_lib.db.tables import metadata

config = context.config

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run the migrations with `forecast-pipeline db upgrade` (pipeline_lib.db.migrate), "
            "which passes the connection in; the alembic command line is not wired up"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite: ALTER by table copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
