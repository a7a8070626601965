"""What Prefect 3.9.1's UI shows, driven in headless Chromium against a real server.

One ``prefect server start`` with its UI on loopback (its own home, SQLite) for the module; a
process work pool and a deployment of ``toy`` (flat parameters with pydantic constraints;
no worker: only its form is used); ``ui-artifacts`` and ``refused`` run once against it in a
child process. A tiny HTTP server on loopback serves the PNG a markdown artifact shows.

Found (and checked here):
a. ``/`` goes to the V2 UI (``/v2/...``). The run page's Artifacts tab lists cards only; the
   artifact's page (``/v2/artifacts/artifact/<id>``) renders markdown: a served image loads,
   an inline ``data:image/png`` image too; a link artifact is a markdown link.
b. The custom run form refuses parallel_chunks=100 before any run exists: the number input
   carries the schema's max, so the browser itself blocks the submit ("Value must be less than
   or equal to 64.", in its bubble, not in the page); given as JSON, the server's schema check
   names it under the field, and the create request it sends anyway (only when no errors showed
   at the click) is refused (409) with an error toast. Dates are popover buttons with a
   yyyy-MM-dd text box; ``X | None`` fields are "list"/"str" and "None" tabs with 'Property is
   type "None"'; a field's description comes from the docstring's Args, not from
   ``Field(description=...)``. A valid submit goes to the deployment's Runs tab with a
   "View run" toast.
c. A run that returned ``Failed(message=...)`` shows "Failed" in its header; the message only in
   the Details tab ("State Message") and in the last log line.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import require_selenium, ui_server
from tests.prefect_server import PrefectServer

require_selenium()

from tests.browser import ui  # noqa: E402
from tests.browser.ui_flows import REFUSAL, png, toy  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
PLOT = png(40, 30)  # the served image: 40 px wide
START, END = dt.date(2024, 1, 5), dt.date(2024, 1, 10)


class _PlotHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PLOT)))
        self.end_headers()
        self.wfile.write(PLOT)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def plot_url() -> Iterator[str]:
    """URL of a PNG served on 127.0.0.1."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _PlotHandler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}/plot.png"
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Site:
    server: PrefectServer
    deployment_id: str
    artifacts_run: str  # flow run id of ui-artifacts
    refused_run: str  # flow run id of refused

    @property
    def ui(self) -> str:
        return self.server.ui_url


@pytest.fixture(scope="module")
def site(browser: Any, plot_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The server with the toy deployment and the two finished runs. (``browser`` first: no
    server is started where the browser test is skipped.)"""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.utilities.callables import parameter_schema

    with ui_server(tmp_path_factory.mktemp("prefect-ui")) as server:
        with server.client() as client:
            client.create_work_pool(WorkPoolCreate(name="ui-pool", type="process"))
            deployment = client.create_deployment(
                flow_id=client.create_flow_from_name("toy"),
                name="toy",
                work_pool_name="ui-pool",
                entrypoint="tests/browser/ui_flows.py:toy",
                parameter_openapi_schema=parameter_schema(toy).model_dump_for_openapi(),
                enforce_parameter_schema=True,
            )
        ran = subprocess.run(
            [sys.executable, "-m", "tests.browser.ui_flows", plot_url],
            env=server.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        runs = json.loads(ran.stdout.strip().splitlines()[-1])
        yield Site(server, str(deployment), runs["artifacts"], runs["refused"])


def _runs_of(site: Site) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with site.server.client() as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[site.deployment_id]))
        )


def test_markdown_artifacts_render_images_and_links(
    browser: Any, site: Site, plot_url: str, shots: Path
) -> None:
    # the V2 UI is the default: / goes to /v2/dashboard
    ui.open_page(browser, site.ui, "/")
    ui.wait_for(browser, lambda d: "/v2/dashboard" in d.current_url, "the redirect to /v2")

    # the run page lists the artifacts as cards, without their content
    ui.open_flow_run(browser, site.ui, site.artifacts_run)
    assert browser.current_url.endswith("?tab=Logs")  # the default tab
    cards = {c.key: c for c in ui.run_artifacts(browser, count=3)}
    assert set(cards) == {"plot-served", "plot-inline", "plot-link"}
    assert {c.type for c in cards.values()} == {"MARKDOWN"}  # a link artifact is markdown too
    assert cards["plot-served"].description == "an image from a local HTTP server"
    assert all(f"/v2/artifacts/artifact/{c.artifact_id}" in c.href for c in cards.values())
    assert not ui.tab_panel(browser, "Artifacts").find_elements("tag name", "img")
    ui.save_screenshot(browser, shots / "a1_run_artifacts_tab.png")

    # the artifact's page renders the markdown: the served image loads ...
    ui.open_artifact(browser, site.ui, cards["plot-served"].artifact_id)
    assert browser.current_url.endswith("?tab=Artifact")
    [image] = ui.markdown_images(browser, count=1)
    assert ui.natural_width(browser, image) == 40  # loaded: the PNG is 40 px wide
    assert ui.markdown_image_info(browser) == [ui.Image(plot_url, "plot", 40)]
    assert ui.markdown_links(browser, count=1) == [("the plot", plot_url)]
    ui.save_screenshot(browser, shots / "a2_artifact_served_image.png")

    # ... an inline data: image too (not stripped)
    ui.open_artifact(browser, site.ui, cards["plot-inline"].artifact_id)
    [inline] = ui.markdown_image_info(browser, count=1)
    assert inline.src.startswith("data:image/png;base64,")
    assert (inline.alt, inline.natural_width) == ("inline", 3)
    ui.save_screenshot(browser, shots / "a3_artifact_inline_image.png")

    # a link artifact: one link, its text the link_text
    ui.open_artifact(browser, site.ui, cards["plot-link"].artifact_id)
    assert ui.markdown_links(browser, count=1) == [("plot.png", plot_url)]
    assert ui.markdown_image_info(browser) == []
    ui.save_screenshot(browser, shots / "a4_artifact_link.png")

    # V1's artifact page (/artifacts/artifact/<id>, still served) renders it as well
    ui.open_artifact(browser, site.ui, cards["plot-served"].artifact_id, v1=True)
    assert ui.markdown_image_info(browser, count=1) == [ui.Image(plot_url, "plot", 40)]
    ui.save_screenshot(browser, shots / "a5_v1_artifact_served_image.png")


def test_custom_run_form_checks_parameters_before_a_run_exists(
    browser: Any, site: Site, shots: Path
) -> None:
    ui.open_custom_run(browser, site.ui, site.deployment_id, via_menu=True)
    assert browser.current_url.endswith(
        f"/v2/deployments/deployment/{site.deployment_id}/run?parameters=%7B%7D"
    )
    # how the fields render
    start = ui.field_control(browser, "start")
    assert (start.tag_name, start.get_attribute("aria-haspopup")) == ("button", "dialog")
    assert start.text == "Pick a date"
    chunks = ui.field_control(browser, "parallel_chunks")
    assert (chunks.get_attribute("type"), chunks.get_attribute("min")) == ("number", "1")
    assert (chunks.get_attribute("max"), chunks.get_attribute("value")) == ("64", "2")
    # the description comes from the docstring's Args; Field(description=...) is dropped
    assert ui.field_description(browser, "parallel_chunks") == "Chunks run at the same time (1-64)."
    assert ui.field_control(browser, "task_runner").text == "threads"
    assert ui.field_control(browser, "dry_run").get_attribute("role") == "switch"
    assert ui.union_tabs(browser, "series") == {"list": False, "None": True}
    assert ui.union_tabs(browser, "note") == {"str": False, "None": True}
    for name in ("series", "note"):
        assert 'Property is type "None"' in ui.visible_text(browser, ui.field_group(browser, name))
    ui.save_screenshot(browser, shots / "b1_custom_run_form.png")

    # parallel_chunks=100 in its number input: the browser itself refuses to submit
    ui.fill(browser, "start", START)
    ui.fill(browser, "end", END)
    ui.fill(browser, "parallel_chunks", 100)
    ui.submit(browser)
    assert ui.native_invalid_fields(browser) == {
        "parallel_chunks": "Value must be less than or equal to 64."
    }
    assert "/run" in browser.current_url
    assert not ui.field_errors(browser) and not ui.toasts(browser)  # nothing else shows
    ui.save_screenshot(browser, shots / "b2_form_native_max.png")

    # Each case below on a fresh form: once errors show, the form checks again 1 s after each
    # change, and a Submit while errors show sends nothing (so no toast).
    # Nothing filled in: the required dates are named under their fields.
    ui.open_custom_run(browser, site.ui, site.deployment_id, parameters={})
    refused = ui.submit_refused(browser, ["start", "end"])
    assert refused.field_errors == {
        "start": ["'start' is a required property"],
        "end": ["'end' is a required property"],
    }
    assert refused.toasts == [
        "Error creating flow run: Validation failed. Failure reason: 'start' is a required property"
    ]

    # parallel_chunks=100 as JSON reaches the schema check: the error is under the field (the
    # dates prefilled by the URL's ?parameters=)
    ui.open_custom_run(browser, site.ui, site.deployment_id, {"start": START, "end": END})
    assert ui.field_control(browser, "start").text == "January 5th, 2024"
    ui.use_json_input(browser, "parallel_chunks", "100")
    refused = ui.submit_refused(browser, ["parallel_chunks"])
    assert refused.field_errors == {"parallel_chunks": ["100 is greater than the maximum of 64"]}
    assert refused.toasts == [
        "Error creating flow run: Validation failed for field 'parallel_chunks'. "
        "Failure reason: 100 is greater than the maximum of 64"
    ]
    ui.save_screenshot(browser, shots / "b3_form_schema_error.png")
    assert not _runs_of(site)  # no run was created

    # a valid form: the run is created, the page goes to the deployment's Runs tab
    ui.open_custom_run(browser, site.ui, site.deployment_id)
    values = {
        "start": START,
        "end": END,
        "parallel_chunks": 3,
        "task_runner": "dask",
        "series": ["DE", "FR"],
        "note": "hello",
        "dry_run": True,
    }
    for name, value in values.items():
        ui.fill(browser, name, value)
    ui.save_screenshot(browser, shots / "b4_form_filled.png")
    accepted = ui.submit_accepted(browser)
    assert accepted.url.endswith(f"/v2/deployments/deployment/{site.deployment_id}?tab=Runs")
    [run] = _runs_of(site)
    run_id = str(run.id)
    assert accepted.run_id == run_id
    assert accepted.toast == f"{run.name} scheduled to start now"
    assert run.parameters == {**values, "start": "2024-01-05", "end": "2024-01-10"}
    ui.save_screenshot(browser, shots / "b5_after_submit.png")

    ui.open_flow_run(browser, site.ui, run_id, tab="Parameters")
    assert ui.run_name(browser) == run.name
    assert ui.run_state(browser) == "Scheduled"


def test_failed_state_message_on_the_run_page(browser: Any, site: Site, shots: Path) -> None:
    ui.open_flow_run(browser, site.ui, site.refused_run)
    assert ui.run_state(browser) == "Failed"
    assert REFUSAL not in ui.header_text(browser)  # the header shows the state, not why
    lines = ui.log_lines(browser, contains=REFUSAL)
    assert f"Finished in state Failed('{REFUSAL}')" in lines
    ui.save_screenshot(browser, shots / "c1_failed_run_logs.png")
    assert ui.run_state_message(browser) == REFUSAL
    ui.save_screenshot(browser, shots / "c2_failed_run_details.png")
