"""The audit of the runs: one row per pipeline run, the validation result of every batch, and
the schema's own bookkeeping.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from pipeline_lib.db.tables.columns import metadata, run_id, tz

RUN_STATUSES = ("running", "succeeded", "failed", "crashed")

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(64), primary_key=True, comment="run id (e.g. the flow run id)"),
    Column("flow", String(64), nullable=False, comment="flow name"),
    Column("as_of", Date, nullable=False, comment="forecast date the run is for"),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="running, succeeded, failed, or crashed (its process died; found by a later run)",
    ),
    Column("started_at", tz(), nullable=False, comment="start time (UTC)"),
    Column("finished_at", tz(), comment="end time (UTC), null while running"),
    Column("message", Text, comment="outcome message, e.g. the error"),
    Column("details", Text, comment="run details, JSON text"),
    CheckConstraint("status IN ('running', 'succeeded', 'failed', 'crashed')", name="status"),
    Index(None, "as_of", "flow"),
    comment="One row per pipeline run, for audit and monitoring",
)

validation_results = Table(
    "validation_results",
    metadata,
    run_id("pipeline_runs.run_id that validated", primary_key=True),
    Column("dataset", String(32), primary_key=True, comment="prices, weather or features"),
    Column("batch", String(128), primary_key=True, comment="batch name, e.g. prices-SP500"),
    Column("as_of", Date, nullable=False, comment="forecast date the batch was validated for"),
    Column(
        "success",
        Boolean(create_constraint=False),
        nullable=False,
        comment="false when a critical expectation failed (the batch was quarantined)",
    ),
    Column("row_count", Integer, nullable=False, comment="rows in the batch"),
    Column("evaluated", Integer, nullable=False, comment="expectations evaluated"),
    Column("successful", Integer, nullable=False, comment="expectations met"),
    Column("failed_critical", Integer, nullable=False, comment="critical expectations failed"),
    Column("failed_warning", Integer, nullable=False, comment="warning expectations failed"),
    Column(
        "failed_expectations",
        Text,
        comment="JSON list: check, columns, expectation_type, severity, unexpected_count, rows",
    ),
    Column("validated_at", tz(), nullable=False, comment="when the result was written (UTC)"),
    Index(None, "as_of", "dataset"),
    comment="Validation results: one row per run and batch, failed batches included",
)

schema_state = Table(
    "schema_state",
    metadata,
    Column("key", String(64), primary_key=True, comment="what is recorded, e.g. views_sha256"),
    Column("value", Text, nullable=False, comment="its value"),
    Column("updated_at", tz(), nullable=False, comment="when it was last set (UTC)"),
    comment="Schema bookkeeping for `forecast-pipeline db upgrade`: the BI views' checksum",
)
