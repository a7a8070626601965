"""Validate a batch (a pandas DataFrame) against its data set's suite with Great Expectations.

One ephemeral GX context per process, created on first use (analytics and progress bars off);
the suite is built per call because the leakage check and the warning thresholds vary. Prices
and weather are validated with derived continuity columns added (:mod:`derived`). GX's batch
manager is shared state: validations in one process run one at a time (:mod:`memo`).
Great Expectations itself is imported on first use: importing this module is cheap.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.validation.derived import DERIVED, add_derived, has_derived, newest_rows
from pipeline_lib.validation.memo import one_validation
from pipeline_lib.validation.report import MAX_ROWS, ExpectationFailure, ValidationReport
from pipeline_lib.validation.results import check_of, columns_of, failure_of, jsonable
from pipeline_lib.validation.revisions import (
    find_revisions,
    has_revisions,
    revision_check,
    revision_note,
)

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition

KEYS = {
    schema.PRICES: schema.SERIES_ID,
    schema.WEATHER: schema.LOCATION,
    schema.FEATURES: schema.SERIES_ID,
    schema.COVARIATES: schema.SERIES_ID,
}


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
    df: pd.DataFrame,
    dataset: str,
    as_of: dt.date,
    batch_name: str,
    history: pd.DataFrame | None = None,
    thresholds: ValidationConfig | None = None,
    **options: Any,
) -> ValidationReport:
    """Validate ``df`` against the suite of ``dataset`` (prices, weather, features, covariates)
    on ``as_of``; ``options`` go to the suite (see ``suites.suite_for``: ``signed`` prices may
    be zero or negative, and their jumps are changes, not log changes).

    ``history``: recent curated rows of the same keys; the gap, jump and absurd-change checks
    look across it into the batch (without it they see the batch alone), and batch rows that
    change its values are revisions (:mod:`revisions`: a ``revisions`` warning and a note in
    ``notes``, critical beyond the allowed share). ``thresholds`` sets the warnings and limits
    (default ``ValidationConfig()``). Never raises on bad data and never changes ``df``: a
    missing column fails the schema check (expectations on it are listed as skipped), an empty
    frame fails ``not_empty``.
    """
    from pipeline_lib.validation.suites import suite_for

    suite = suite_for(dataset, as_of, thresholds, **options)
    doubled = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    data = df.reset_index(drop=True).loc[:, ~df.columns.duplicated()]  # GX needs distinct names
    pre: list[ExpectationFailure] = [_doubled_columns(doubled)] if doubled else []
    if has_derived(dataset):
        clash = sorted(set(map(str, data.columns)) & set(DERIVED))
        if clash:  # a derived name in the input would be overwritten: report it, then drop it
            pre.append(_reserved_columns(clash))
            data = data.drop(columns=clash)
        signed = bool(options.get("signed", False))
        data = add_derived(data, dataset, as_of, history, signed)  # a copy: df stays as is
    else:
        data = data.copy()
    post: list[ExpectationFailure] = []
    notes: list[str] = []
    if has_revisions(dataset):
        revisions = find_revisions(df.loc[:, ~df.columns.duplicated()], history, dataset, as_of)
        revised = revision_check(revisions, history, dataset, as_of, thresholds)
        if revised is not None:
            post.append(revised)
            refused = revised.severity == "critical"
            notes.append(revision_note(batch_name, revisions, dataset, refused))
    report = _run(data, suite, dataset, as_of, batch_name, len(df), pre, post)
    report.notes = notes
    return report


def check_freshness(
    history: pd.DataFrame | None,
    dataset: str,
    as_of: dt.date,
    batch_name: str,
    thresholds: ValidationConfig | None = None,
) -> ValidationReport:
    """Freshness of curated data when a run brought no new rows for a key (an empty batch).

    Checks the newest curated row per key of ``history`` (dated <= ``as_of``); no curated row at
    all is itself a freshness warning. Warnings only: the report always succeeds.
    """
    from pipeline_lib.validation.suites import freshness_suite

    data = newest_rows(history, dataset, as_of)
    pre = [] if len(data) else [no_data(dataset, as_of)]
    return _run(data, freshness_suite(dataset, thresholds), dataset, as_of, batch_name, 0, pre)


def _run(
    data: pd.DataFrame,
    suite: Any,
    dataset: str,
    as_of: dt.date,
    batch_name: str,
    row_count: int,
    pre: list[ExpectationFailure],
    post: list[ExpectationFailure] | None = None,
) -> ValidationReport:
    """Run the runnable part of ``suite`` on ``data`` (GX's own copy) and build the report.

    ``pre`` and ``post``: failed checks made outside GX, listed before and after its results."""
    present = set(map(str, data.columns))
    run_suite, skipped, order = runnable(suite, present)
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",  # counts and the first MAX_ROWS offending rows, by key
        "partial_unexpected_count": MAX_ROWS,
    }
    keys = index_columns(dataset, present)
    if keys:
        result_format["unexpected_index_column_names"] = keys
    result = run_gx(data, run_suite, result_format)

    results = sorted(result.results, key=lambda r: order[check_of(r.expectation_config)])
    post = post or []
    failed = pre + [failure_of(r) for r in results if not r.success] + post
    gx_json = result.to_json_dict()
    gx_json.get("meta", {}).get("batch_markers", {}).pop("ge_load_time", None)  # determinism
    evaluated = len(results) + len(pre) + len(post)
    return report_of(
        dataset, batch_name, as_of, row_count, evaluated, failed, skipped, jsonable(gx_json)
    )


def runnable(suite: Any, present: set[str]) -> tuple[Any, list[str], dict[str, int]]:
    """The part of ``suite`` whose columns are all ``present`` (a GX suite), the check names
    of the others (skipped), and each runnable check's position (the order of reports)."""
    import great_expectations as gx

    fits = [e for e in suite.expectations if set(columns_of(e)) <= present]
    skipped = [check_of(e) for e in suite.expectations if not set(columns_of(e)) <= present]
    order = {check_of(e): i for i, e in enumerate(fits)}
    return gx.ExpectationSuite(name=suite.name, expectations=fits), skipped, order


def index_columns(dataset: str, present: set[str]) -> list[str]:
    """The columns naming an offending row in GX's results: the key and the date, if present."""
    return [k for k in (KEYS[dataset], schema.DATE) if k in present]


def run_gx(data: pd.DataFrame, suite: Any, result_format: dict[str, Any]) -> Any:
    """GX's ExpectationSuiteValidationResult of ``suite`` on ``data`` (one at a time)."""
    with one_validation():
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": data})
        try:
            return batch.validate(suite, result_format=result_format)
        finally:
            _release(batch)


def _release(batch: Any) -> None:
    """Drop GX's references to ``batch``'s DataFrame: its execution engine keeps the last
    batch loaded until the next one (the cold night's whole features batch, 0.17 GB at 300
    series x 10 years, would otherwise live through the backtest)."""
    manager = batch.data.execution_engine.batch_manager
    manager.batch_data_cache.clear()
    manager.reset_batch_cache()


def report_of(
    dataset: str,
    batch_name: str,
    as_of: dt.date,
    row_count: int,
    evaluated: int,
    failed: list[ExpectationFailure],
    skipped: list[str],
    gx_result: dict[str, Any],
) -> ValidationReport:
    """The report of ``evaluated`` checks of which ``failed`` failed (critical ones fail it)."""
    return ValidationReport(
        dataset=dataset,
        batch_name=batch_name,
        as_of=as_of.isoformat(),
        row_count=row_count,
        success=not any(f.severity == "critical" for f in failed),
        evaluated=evaluated,
        successful=evaluated - len(failed),
        failures=[f for f in failed if f.severity == "critical"],
        warnings=[f for f in failed if f.severity != "critical"],
        skipped=skipped,
        gx_result=gx_result,
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


def _reserved_columns(columns: list[str]) -> ExpectationFailure:
    return ExpectationFailure(
        check="columns_reserved",
        expectation_type="reserved_column_names",  # a pre-check: the names of derived columns
        columns=columns,
        severity="critical",
        risk="schema",
        expected=f"none of {DERIVED}",
        details=f"unexpected columns: {columns}",
    )


def no_data(dataset: str, as_of: dt.date) -> ExpectationFailure:
    """The freshness warning of a key with no curated rows and nothing new."""
    return ExpectationFailure(
        check="fresh",
        expectation_type="curated_data_exists",  # a pre-check: nothing to measure staleness on
        columns=[schema.DATE],
        severity="warning",
        risk="freshness",
        expected=f"curated {dataset} dated on or before {as_of.isoformat()}",
        details="no curated rows and nothing new",
    )
