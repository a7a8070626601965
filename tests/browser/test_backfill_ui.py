"""A backfill launched from the Prefect UI, as a data engineer does it, in headless Chromium.

A real ``prefect server start`` with its UI on loopback, the project's deployments created by
``forecast-pipeline deploy``, a process worker, and ``forecast-pipeline serve`` (the read API,
which serves the reports folder the plots are in). In the browser:

1. the backfill deployment's Run form: out-of-range ``parallel_chunks`` is refused by the form
   itself, no run created; ``end`` before ``start`` (which the form cannot compare) makes a run
   that ends at once, Failed, its state message naming ``end``;
2. a small valid backfill submitted from the form runs to the end;
3. its ``backfill-summary`` artifact links every date's run by the date; each link leads to
   that date's run (named by its date), whose ``forecasts`` artifact holds the date's forecasts
   and whose ``forecast-plot`` artifact shows the plot: the image has loaded (natural width
   above zero), served by ``serve`` from the data folder.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.browser.conftest import require_selenium, ui_server
from tests.conftest import for_prefect_server, pg_database
from tests.e2e.conftest import write_config
from tests.prefect_server import PrefectServer, Service, free_port, tail, wait_until

require_selenium()

from tests.browser import ui  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.postgres]

POOL = "forecast-pool"
DATES = [dt.date(2015, 7, 1), dt.date(2015, 7, 2)]  # NYSE sessions: one chunk of 2 days
RUN_TIMEOUT = 300  # seconds; the 2-date backfill takes about a minute on 2 cores
# schedules that never fire while the test runs: the worker must only see the backfills
ORCHESTRATION = """
[orchestration]
nightly_cron = "30 6 1 1 *"
retrain_cron = "0 4 1 1 *"
timezone = "Europe/London"
"""


@dataclass(frozen=True)
class Site:
    server: PrefectServer
    backfill_id: str  # the backfill deployment
    api: str  # forecast-pipeline serve

    @property
    def ui(self) -> str:
        return self.server.ui_url


@pytest.fixture(scope="module")
def site(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str
) -> Iterator[Site]:
    """Server and UI (on a PostgreSQL database of its own: ``for_prefect_server``),
    deployments, a worker and the read API. (``browser`` first: nothing is started where the
    browser test is skipped.)"""
    tmp = tmp_path_factory.mktemp("backfill-ui")
    port = free_port()
    serve = f"\n[serve]\nport = {port}\n"
    config = write_config(tmp / "pipeline.toml", tmp / "data", extra=ORCHESTRATION + serve)
    cli = str(Path(sys.executable).with_name("forecast-pipeline"))
    with (
        pg_database(pg_admin_url) as url,
        ui_server(tmp, database_url=for_prefect_server(url)) as server,
    ):
        server.deploy_pipeline(config, tmp)
        with server.client() as client:
            backfill = client.read_deployment_by_name("backfill/backfill")
        server.start_worker(
            POOL,
            server.env(
                PIPELINE_CONFIG=str(config),
                PREFECT_WORKER_QUERY_SECONDS="1",
                PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.5",
            ),
        )
        api = Service.start(
            "serve", [cli, "serve", "--config", str(config)], server.env(), tmp, tmp / "serve.log"
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _answers(f"{url}/health", api), 60, "forecast-pipeline serve")
            yield Site(server, str(backfill.id), url)
        finally:
            assert not api.stop(), tail(api.log)


def _answers(url: str, service: Service) -> bool | None:
    if service.proc.poll() is not None:
        raise RuntimeError(f"serve exited: {tail(service.log)}")
    try:
        return httpx.get(url, timeout=2).status_code in (200, 503) or None
    except httpx.HTTPError:
        return None


def _final(site: Site, run_id: str) -> Any:
    """The flow run once it reached a final state."""
    with site.server.client() as client:
        try:
            return wait_until(
                lambda: (r := client.read_flow_run(UUID(run_id))).state.is_final() and r or None,
                RUN_TIMEOUT,
                f"flow run {run_id} to finish",
                interval=1.0,
            )
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n{tail(site.server.workers[0].log, 60)}", pytrace=False)


def _runs(site: Site) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with site.server.client() as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[site.backfill_id]))
        )


def _artifact_ids(site: Site, run_id: str) -> dict[str, str]:
    """Artifact key -> id, for one flow run."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with site.server.client() as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)]))
        )
    return {a.key: str(a.id) for a in found}


def test_the_form_refuses_what_it_can_and_a_reversed_range_fails_naming_end(
    browser: Any, site: Site, shots: Path
) -> None:
    # flat options, with their defaults; nothing reads 'Property is type "None"'
    ui.open_custom_run(browser, site.ui, site.backfill_id, via_menu=True)
    assert ui.field_control(browser, "parallel_chunks").get_attribute("value") == "2"
    assert ui.field_control(browser, "task_runner").text == "threads"
    assert 'Property is type "None"' not in ui.visible_text(browser)
    assert "Full retraining cadence" in ui.field_description(browser, "retrain_every_days")

    # out of range: the form refuses, naming the field; no run is created
    ui.fill(browser, "start", DATES[0])
    ui.fill(browser, "end", DATES[-1])
    ui.fill(browser, "parallel_chunks", 100)
    ui.submit(browser)
    assert ui.native_invalid_fields(browser) == {
        "parallel_chunks": "Value must be less than or equal to 64."
    }
    ui.save_screenshot(browser, shots / "backfill_1_out_of_range.png")
    assert not _runs(site)

    # end before start: the run ends at once, Failed, with the parameter named
    ui.open_custom_run(browser, site.ui, site.backfill_id)
    ui.fill(browser, "start", dt.date(2015, 7, 3))
    ui.fill(browser, "end", dt.date(2015, 7, 1))
    accepted = ui.submit_accepted(browser)
    run = _final(site, accepted.run_id)
    assert run.state.is_failed() and run.name == "backfill-2015-07-03-to-2015-07-01"
    named = "Invalid parameter end: 2015-07-01 is before start 2015-07-03"
    assert run.state.message.startswith(named)
    ui.open_flow_run(browser, site.ui, accepted.run_id)
    assert ui.run_state(browser) == "Failed"
    assert ui.run_state_message(browser).startswith(named)
    ui.save_screenshot(browser, shots / "backfill_2_reversed_range.png")


def test_a_backfill_from_the_form_links_each_dates_forecasts_and_plot(
    browser: Any, site: Site, shots: Path
) -> None:
    ui.open_custom_run(browser, site.ui, site.backfill_id)
    ui.fill(browser, "start", DATES[0])
    ui.fill(browser, "end", DATES[-1])
    ui.fill(browser, "retrain_every_days", 2)
    ui.fill(browser, "parallel_chunks", 1)
    accepted = ui.submit_accepted(browser)
    run = _final(site, accepted.run_id)
    assert run.state.is_completed(), (run.state, tail(site.server.workers[0].log, 60))
    assert run.name == f"backfill-{DATES[0]}-to-{DATES[-1]}"

    # the backfill's run page lists its summary; the summary links every date's run
    ui.open_flow_run(browser, site.ui, accepted.run_id, tab="Artifacts")
    cards = {c.key: c for c in ui.run_artifacts(browser, count=3)}
    assert {"backfill-plan", "backfill-summary"} <= set(cards), set(cards)
    ui.save_screenshot(browser, shots / "backfill_3_run_artifacts.png")
    ui.open_artifact(browser, site.ui, cards["backfill-summary"].artifact_id)
    links = dict(ui.markdown_links(browser, count=2 * len(DATES)))
    ui.save_screenshot(browser, shots / "backfill_4_summary.png")
    for day in DATES:
        # the link leads to the date's run, named by its date
        browser.get(links[f"forecast-{day}"])
        run_id = browser.current_url.rstrip("/").split("/")[-1].split("?")[0]
        ui.wait_for(browser, lambda d, day=day: f"forecast-{day}" in ui.visible_text(d), "name")
        ui.save_screenshot(browser, shots / f"backfill_5_run_{day}.png")
        artifacts = _artifact_ids(site, run_id)

        # its forecasts artifact: the date's forecasts
        ui.open_artifact(browser, site.ui, artifacts["forecasts"])
        text = ui.markdown_text(browser)
        assert f"Forecasts as of {day}" in text and "MSFT" in text

        # its plot, shown in the page from the read API: loaded
        ui.open_artifact(browser, site.ui, artifacts["forecast-plot"])
        [image] = ui.markdown_image_info(browser, count=1)
        assert image.src.startswith(f"{site.api}/reports/plots/{day}/forecast-")
        assert image.natural_width > 0
        ui.save_screenshot(browser, shots / f"backfill_6_plot_{day}.png")
