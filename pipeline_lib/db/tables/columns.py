"""The one MetaData every table registers on, its constraint naming, and the columns the tables
share (the run that wrote a row, the model version, a UTC timestamp).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    String,
)

# Deterministic constraint names, so the generated DDL is stable and readable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def tz() -> DateTime:
    """A timestamp with time zone (UTC values)."""
    return DateTime(timezone=True)


def run_id(
    comment: str = "pipeline_runs.run_id that wrote it", primary_key: bool = False
) -> Column:
    """The ``run_id`` column: the pipeline run that wrote a row."""
    return Column(
        "run_id",
        String(64),
        ForeignKey("pipeline_runs.run_id"),
        primary_key=primary_key,
        nullable=False,
        comment=comment,
    )


def model_version(comment: str, primary_key: bool = False) -> Column:
    """The ``model_version`` column: the registered model version a row belongs to."""
    return Column(
        "model_version",
        String(64),
        ForeignKey("model_versions.version"),
        primary_key=primary_key,
        nullable=False,
        comment=comment,
    )
