"""Browser fixtures: headless Chromium driven by Selenium, from Debian's packages only.

The browser and its driver are the ``chromium`` and ``chromium-driver`` packages
(``/usr/bin/chromium``, ``/usr/bin/chromedriver``; ``.ci/run`` installs them). The driver's path
is given to Selenium, so Selenium Manager is never run (``SE_OFFLINE`` and a ``SE_MANAGER_PATH``
that always fails make sure of it: it would download a browser or driver), and Chromium is told
not to reach the network by itself. Without them a browser test is skipped, or fails under
``CI=true``, where they must be there.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import prefect_server as ps

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver"
SHOTS = Path(os.environ.get("PIPELINE_UI_SHOTS", "/tmp/ui_shots"))  # screenshots, never the repo
WINDOW = (1400, 1000)


def missing_browser() -> str | None:
    """Why no browser test can run here (None when Chromium and its driver are installed)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (Debian: `{INSTALL}`)"


@contextmanager
def _offline_selenium() -> Iterator[None]:
    """Selenium Manager (which downloads browsers and drivers) must never run: the Service
    names the driver, so Selenium skips it; should a change make it run anyway, it is told to
    stay offline, and a stand-in that exits 1 makes it fail at once."""
    saved = {k: os.environ.get(k) for k in ("SE_OFFLINE", "SE_MANAGER_PATH")}
    os.environ.update(SE_OFFLINE="true", SE_MANAGER_PATH="/bin/false")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def chromium(window: tuple[int, int] = WINDOW) -> Iterator[Any]:
    """A headless Chromium WebDriver (Debian's browser and driver), quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={window[0]},{window[1]}",
        # no traffic of its own: updates, sync, safe browsing, first-run pages
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--lang=en-US",
        # only loopback resolves: the UI's analytics (amplitude.com) and anything else
        # outside fail at once instead of waiting on the network
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    ):
        options.add_argument(arg)
    # the page's console (errors of the UI's requests and scripts), read by ui.wait_for's
    # failure message
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with _offline_selenium():
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def require_selenium() -> None:
    """Skip the calling test module when selenium is not installed (fail under CI=true)."""
    if importlib.util.find_spec("selenium") is None:
        reason = "selenium is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (selenium WebDriver) for the module's tests. Without Chromium or
    chromedriver: skipped, except under CI=true, where it fails (CI installs them)."""
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    require_selenium()
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="session")
def shots() -> Path:
    """Where the tests save their screenshots (/tmp/ui_shots, or PIPELINE_UI_SHOTS)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@contextmanager
def ui_server(
    home: Path, server_env: Mapping[str, str] | None = None, database_url: str | None = None
) -> Iterator[ps.PrefectServer]:
    """A Prefect server with its UI on 127.0.0.1 (its own home; a SQLite database in it unless
    ``database_url``); stopped at the end, with its workers, and nothing of it may be left
    running."""
    server = ps.PrefectServer(
        home=home / "prefect-home",
        logs=home / "logs",
        database_url=database_url,
        server_env=dict(server_env or {}),
        ui=True,
    )
    try:
        server.start()
        yield server
    finally:
        left = server.stop()
        assert not left, f"left running after the test: {left}"
