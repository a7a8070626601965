"""Validation reports and the exception a run raises when a batch fails a critical expectation.

Plain dataclasses, no Great Expectations import: cheap to import, to pickle and to log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline_lib import schema
from pipeline_lib.errors import PipelineError

MAX_ROWS = 5  # offending rows kept per failed expectation
_KEY_LABELS = {schema.SERIES_ID: "series", schema.LOCATION: "location"}


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation: what was checked, on which columns, and a few offending rows."""

    check: str  # short name from the suite, e.g. "close_positive"
    expectation_type: str  # GX name, e.g. "expect_column_values_to_be_between"
    columns: list[str]
    severity: str  # "critical" or "warning"
    risk: str  # what the check guards: schema, types, nulls, duplicates, leakage, ranges, ...
    expected: str = ""  # the rule in words, e.g. "close > 0"
    unexpected_count: int | None = None  # None for table-level checks (schema, row count, type)
    rows: list[dict[str, Any]] = field(default_factory=list)  # key columns + offending values
    details: str = ""  # observed value, missing columns, or the error GX raised

    def describe(self) -> str:
        """One line: check, columns, count, details and example rows."""
        cols = f" ({', '.join(self.columns)})" if self.columns else ""
        text = f"{self.check}{cols} [{self.expectation_type}]"
        if self.expected:
            text += f" expected {self.expected}"
        if self.unexpected_count is not None:
            text += f": {self.unexpected_count} row(s)"
        if self.details:
            text += f": {self.details}"
        if self.rows:
            text += ", e.g. " + "; ".join(format_row(r) for r in self.rows)
        return text


@dataclass
class ValidationReport:
    """The outcome of validating one batch of one data set."""

    dataset: str
    batch_name: str
    as_of: str  # ISO date the batch was validated for
    row_count: int
    success: bool  # True when no critical expectation failed
    evaluated: int
    successful: int
    failures: list[ExpectationFailure] = field(default_factory=list)  # critical
    warnings: list[ExpectationFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # checks not run: their column is missing
    source: str = ""  # where the rows came from, e.g. "file drop: b.csv"
    notes: list[str] = field(default_factory=list)  # for the run's notes, e.g. rows revised
    gx_result: dict[str, Any] = field(default_factory=dict, repr=False)  # GX's own result JSON

    @property
    def key(self) -> str:
        """``<dataset>/<batch_name>``, the key of this batch in quarantine path mappings."""
        return f"{self.dataset}/{self.batch_name}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``json.dumps`` works on it), GX's result under ``gx_result``."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines: verdict, counts, then each failure and warning."""
        verdict = "passed" if self.success else "FAILED"
        lines = [
            f"{self.dataset} batch {self.batch_name!r} (as of {self.as_of}, {self.row_count} rows):"
            f" {verdict}, {self.successful}/{self.evaluated} expectations met"
        ]
        lines += [f"  critical {f.describe()}" for f in self.failures]
        lines += [f"  warning  {f.describe()}" for f in self.warnings]
        if self.skipped:
            lines.append(f"  not run (column missing): {', '.join(self.skipped)}")
        return "\n".join(lines)


def format_row(row: Mapping[str, Any]) -> str:
    """``series SP500 2013-05-02 close=-3.2``: key columns first, then the offending values."""
    parts = [f"{_KEY_LABELS[k]} {row[k]}" for k in _KEY_LABELS if k in row]
    if schema.DATE in row:
        parts.append(str(row[schema.DATE]))
    parts += [f"{k}={v}" for k, v in row.items() if k not in _KEY_LABELS and k != schema.DATE]
    return " ".join(parts)


class ValidationFailed(PipelineError):  # an Exception as before; printed by the CLI
    """Raised when at least one batch failed a critical expectation.

    ``reports`` holds every report of the run (failed or not); ``quarantine_paths`` maps
    ``report.key`` to the quarantine folder of each failed batch.
    """

    def __init__(
        self, reports: Sequence[ValidationReport], quarantine_paths: Mapping[str, str]
    ) -> None:
        self.reports = list(reports)
        self.quarantine_paths = dict(quarantine_paths)
        super().__init__(self._message())

    @property
    def failed(self) -> list[ValidationReport]:
        return [r for r in self.reports if not r.success]

    def _message(self) -> str:
        failed = self.failed
        lines = [f"{len(failed)} of {len(self.reports)} batch(es) failed validation:"]
        for r in failed:
            origin = f" from {r.source}" if r.source else ""
            lines.append(f"- {r.dataset} batch {r.batch_name!r}{origin} (as of {r.as_of}):")
            lines += [f"    {f.describe()}" for f in r.failures]
            where = self.quarantine_paths.get(r.key, "not quarantined")
            lines.append(f"    quarantine: {where}")
        return "\n".join(lines)


def raise_if_failed(
    reports: Sequence[ValidationReport], quarantine_paths: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`ValidationFailed` if any report failed; warnings alone never raise."""
    if any(not r.success for r in reports):
        raise ValidationFailed(reports, quarantine_paths or {})
