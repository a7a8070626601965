"""``report_link``: a file under the reports folder to the URL a browser opens it at, from the
``[serve]`` settings; anything outside the folder is a ValueError naming the path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline_lib.api.links import report_link, report_path, series_link
from pipeline_lib.config import load_settings
from pipeline_lib.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("PIPELINE_"):
            monkeypatch.delenv(name)


def test_default_links_go_to_the_api_own_reports_route() -> None:
    s = load_settings(data_dir="/srv/data")
    plot = "/srv/data/reports/plots/2020-12-30/forecast-r1.png"
    assert report_link(s, plot) == "http://127.0.0.1:8000/reports/plots/2020-12-30/forecast-r1.png"
    assert report_path(s, plot) == "plots/2020-12-30/forecast-r1.png"
    s = load_settings(data_dir="/srv/data", serve={"host": "10.0.0.5", "port": 9000})
    assert report_link(s, plot).startswith("http://10.0.0.5:9000/reports/plots/")
    s = load_settings(data_dir="/srv/data", serve={"host": "::1"})
    assert report_link(s, plot).startswith("http://[::1]:8000/reports/plots/")


def test_public_and_reports_urls() -> None:
    s = load_settings(data_dir="/srv/data", serve={"public_url": "https://fc.example.com/api/"})
    assert report_link(s, "/srv/data/reports/runs/x.json") == (
        "https://fc.example.com/api/reports/runs/x.json"
    )
    assert series_link(s, "NO_2") == "https://fc.example.com/api/series/NO_2"
    bucket = "https://bucket.s3.eu-west-1.amazonaws.com/forecast/reports"
    s = load_settings(
        data_dir="s3://bucket/forecast/",
        database_url="postgresql+psycopg://u@db/forecasts",
        serve={"public_url": "https://fc.example.com", "reports_url": bucket + "/"},
    )
    assert report_link(s, "s3://bucket/forecast/reports/plots/2020-12-30/forecast-r1.png") == (
        f"{bucket}/plots/2020-12-30/forecast-r1.png"
    )


def test_the_environment_sets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_SERVE__PORT", "8123")
    monkeypatch.setenv("PIPELINE_SERVE__REPORTS_URL", "https://files.example.com/r")
    s = load_settings(data_dir="/srv/data")
    assert s.serve.port == 8123 and s.serve.public_base == "http://127.0.0.1:8123"
    assert report_link(s, "/srv/data/reports/a.png") == "https://files.example.com/r/a.png"


def test_file_urls_dots_and_odd_names() -> None:
    s = load_settings(data_dir="file:///srv/data")
    base = "http://127.0.0.1:8000/reports"
    assert report_link(s, "/srv/data/reports/a.png") == f"{base}/a.png"
    assert report_link(s, "file:///srv/data/reports/a.png") == f"{base}/a.png"
    local = load_settings(data_dir="/srv/data")
    assert report_link(local, "file:///srv/data/reports/a.png") == f"{base}/a.png"
    assert report_link(local, "/srv/data/reports/plots/../runs//r.json") == f"{base}/runs/r.json"
    odd = "/srv/data/reports/validation/2020-12-30/prices SP500#1?x=é.json"
    assert report_link(local, odd) == (
        f"{base}/validation/2020-12-30/prices%20SP500%231%3Fx=%C3%A9.json"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/srv/data/pipeline.db",  # beside the folder
        "/srv/data/reports/../pipeline.db",  # leaves it
        "/srv/data/reports",  # the folder itself
        "/srv/data/reports/",
        "/srv/data/reportsX/a.png",  # a name that only starts like it
        "reports/a.png",  # relative: it would depend on the working folder
        "plots/a.png",
        "s3://bucket/srv/data/reports/a.png",  # another filesystem
        "",
    ],
)
def test_paths_outside_the_reports_folder_are_refused(path: str) -> None:
    s = load_settings(data_dir="/srv/data")
    with pytest.raises(ValueError, match="report path") as caught:
        report_link(s, path)
    assert repr(path) in str(caught.value)


def test_another_bucket_or_prefix_is_refused() -> None:
    s = load_settings(data_dir="s3://bucket/data", database_url="postgresql+psycopg://u@db/f")
    assert report_link(s, "s3://bucket/data/reports/a.png").endswith("/reports/a.png")
    for path in ("s3://bucket/data2/reports/a.png", "gs://bucket/data/reports/a.png"):
        with pytest.raises(ValueError, match="not a file under the reports folder"):
            report_link(s, path)


def test_bad_serve_settings_name_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"serve\.public_url: must be an http"):
        load_settings(serve={"public_url": "fc.example.com"})
    with pytest.raises(ConfigError, match=r"serve\.reports_url: must be an http"):
        load_settings(serve={"reports_url": "s3://bucket/reports"})
    with pytest.raises(ConfigError, match=r"serve\.port"):
        load_settings(serve={"port": 0})


def test_links_import_nothing_heavy() -> None:
    """The nightly imports it: no FastAPI, no Prefect."""
    code = (
        "import sys, pipeline_lib.api.links; "
        "print(sorted(m for m in ('fastapi', 'prefect', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
