"""Validate a batch (a pandas DataFrame) against its data set's suite with Great Expectations.

One ephemeral GX context per process, created on first use (analytics and progress bars off);
the suite is built per call because the leakage check depends on the as-of date. GX's batch
manager is shared state, so validations in one process run one at a time (each takes ~0.1 s).
Great Expectations itself is imported on first use: importing this module is cheap.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.validation.report import MAX_ROWS, ExpectationFailure, ValidationReport
from pipeline_lib.validation.results import check_of, columns_of, failure_of, jsonable

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition

KEYS = {schema.PRICES: schema.SERIES_ID, schema.WEATHER: schema.LOCATION}
_LOCK = threading.Lock()


@functools.cache
def _batch_definition() -> BatchDefinition:
    """The process-wide ephemeral context's whole-DataFrame batch definition."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("pipeline").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole")


def validate_batch(
    df: pd.DataFrame, dataset: str, as_of: dt.date, batch_name: str
) -> ValidationReport:
    """Validate ``df`` against the suite of ``dataset`` as known on ``as_of``.

    Never raises on bad data and never changes ``df``: a missing column fails the schema check
    (expectations on that column are listed as skipped), an empty frame fails ``not_empty``.
    """
    import great_expectations as gx

    from pipeline_lib.validation.suites import suite_for

    suite = suite_for(dataset, as_of)
    present = set(map(str, df.columns))
    runnable = [e for e in suite.expectations if set(columns_of(e)) <= present]
    skipped = [check_of(e) for e in suite.expectations if not set(columns_of(e)) <= present]
    order = {check_of(e): i for i, e in enumerate(runnable)}
    run_suite = gx.ExpectationSuite(name=suite.name, expectations=runnable)

    keys = [k for k in (KEYS[dataset], schema.DATE) if k in present]
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",  # counts and the first MAX_ROWS offending rows, by key
        "partial_unexpected_count": MAX_ROWS,
    }
    if keys:
        result_format["unexpected_index_column_names"] = keys
    data = df.reset_index(drop=True).copy()  # GX gets its own frame; the caller's stays as is
    doubled = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    data = data.loc[:, ~data.columns.duplicated()]  # GX cannot address a doubled column name

    with _LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": data})
        result = batch.validate(run_suite, result_format=result_format)

    results = sorted(result.results, key=lambda r: order[check_of(r.expectation_config)])
    failed = [failure_of(r) for r in results if not r.success]
    if doubled:  # schema: a set comparison cannot see a repeated column; report it here
        failed.insert(0, _doubled_columns(doubled))
    gx_json = result.to_json_dict()
    gx_json.get("meta", {}).get("batch_markers", {}).pop("ge_load_time", None)  # determinism
    return ValidationReport(
        dataset=dataset,
        batch_name=batch_name,
        as_of=as_of.isoformat(),
        row_count=len(df),
        success=not any(f.severity == "critical" for f in failed),
        evaluated=len(results) + bool(doubled),
        successful=len(results) + bool(doubled) - len(failed),
        failures=[f for f in failed if f.severity == "critical"],
        warnings=[f for f in failed if f.severity != "critical"],
        skipped=skipped,
        gx_result=jsonable(gx_json),
    )


def _doubled_columns(columns: list[str]) -> ExpectationFailure:
    return ExpectationFailure(
        check="columns_distinct",
        expectation_type="distinct_column_names",  # a pre-check: GX needs distinct names
        columns=columns,
        severity="critical",
        risk="schema",
        expected="each column once",
        details=f"repeated columns: {columns}",
    )
