"""Great Expectations Data Docs: a static HTML site of the suites and validation results.

Built under ``<data_dir>/reports/data_docs/`` (open ``index.html``) by a throw-away ephemeral
GX context (a few ms) whose validation-results store is a folder of GX JSON files under
``<data_dir>/reports/gx/validations/``, so the site's index lists past runs too (newest first,
the last ``RESULTS_LIMIT`` results). One page per GX run: a batch validated alone, or a set of
batches validated together (a failed batch of a set also gets its own page). Only this run's
pages are rendered; the suites' pages show the suites as of this run. GX writes with local file
I/O only: for a remote data folder (object storage) the site is skipped, with a logged note.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_lib.config import ValidationConfig
from pipeline_lib.validation.report import ValidationReport

if TYPE_CHECKING:
    from great_expectations.data_context.types.base import DataContextConfig

    from pipeline_lib.validation.combined import Run

log = logging.getLogger(__name__)

SITE = "local_site"
RESULTS_LIMIT = 500  # validation results listed on the index page


def local_dir(data_dir: str) -> Path | None:
    """The data folder as a local path, or None when it is a remote fsspec URL."""
    if data_dir.startswith("file://"):
        return Path(data_dir.removeprefix("file://"))
    if "://" in data_dir:
        return None
    return Path(data_dir)


def build_data_docs(
    data_dir: str,
    reports: Sequence[ValidationReport],
    run_name: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None = None,
    run_time: dt.datetime | None = None,
    runs: Sequence[Run] = (),
) -> str | None:
    """Add ``reports`` (their GX results) to the Data Docs site and rebuild its index.

    ``run_name`` groups the results of one run (the run id). ``runs``: GX runs that validated
    several batches at once (:mod:`combined`); each is one page, naming every offending row by
    its key, and their batches get no page of their own unless they failed (a quarantined
    batch's page is found by its name, as before). Returns the index page's URL, or None when
    the data folder is remote (nothing is built).
    """
    root = local_dir(data_dir)
    if root is None:
        log.info("Data Docs skipped: %s is not a local folder (GX sites are local here)", data_dir)
        return None
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from pipeline_lib.validation.suites import SUITES

    context = gx.get_context(mode="ephemeral", project_config=_config(root.resolve()))
    for build in SUITES.values():  # every suite, so older results keep their suite page
        context.suites.add(build(as_of, thresholds))
    run_id = RunIdentifier(run_name=run_name, run_time=run_time or dt.datetime.now(dt.UTC))
    keys = []
    for dataset, name, gx_result in _pages(reports, runs):
        if not gx_result or dataset not in SUITES:
            continue
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=dataset),
            run_id=run_id,
            batch_identifier=name,
        )
        result = expectationSuiteValidationResultSchema.load(gx_result)
        context.validation_results_store.set(key, result)
        keys.append(key)
    suites = [ExpectationSuiteIdentifier(name=name) for name in SUITES]
    # GX annotates a list of one identifier type; its site builder takes a mixed list
    urls = context.build_data_docs(
        site_names=[SITE],
        resource_identifiers=[*keys, *suites],  # type: ignore[arg-type]
    )
    return urls.get(SITE)


def _pages(
    reports: Sequence[ValidationReport], runs: Sequence[Run]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(data set, name, GX result) of each page: a failed report or one validated alone, then
    each run over several batches."""
    together = {name for run in runs for name in run.batches}
    pages = [
        (r.dataset, r.batch_name, r.gx_result)
        for r in reports
        if not r.success or r.batch_name not in together
    ]
    return pages + [(run.dataset, run.name, run.gx_result) for run in runs]


def _config(root: Path) -> DataContextConfig:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(root / "reports" / "gx" / "validations"),
    }
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(root / "reports" / "data_docs"),
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": RESULTS_LIMIT,
        },
    }
    return DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=defaults,
        data_docs_sites={SITE: site},
    )
