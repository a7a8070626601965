"""Batch validation with Great Expectations, and the quarantine of failed batches.

``validate_batch`` checks a DataFrame against its data set's suite (``suites``);
``validate_batches`` checks many batches of a data set in one GX run, each with the report it
gets alone (``combined``). A report whose ``success`` is False is written to quarantine with
``quarantine_batch``; ``raise_if_failed`` raises :class:`ValidationFailed` naming every failed
expectation and quarantine folder.
Great Expectations is imported on the first validation, not when this package is imported.
"""

from pipeline_lib.validation.combined import check_freshness_all, validate_batches
from pipeline_lib.validation.quarantine import quarantine_batch
from pipeline_lib.validation.report import (
    ExpectationFailure,
    ValidationFailed,
    ValidationReport,
    raise_if_failed,
)
from pipeline_lib.validation.validate import check_freshness, validate_batch

__all__ = [
    "ExpectationFailure",
    "ValidationFailed",
    "ValidationReport",
    "check_freshness",
    "check_freshness_all",
    "quarantine_batch",
    "raise_if_failed",
    "validate_batch",
    "validate_batches",
]
