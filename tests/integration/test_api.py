"""The read API, as people run it: ``forecast-pipeline serve`` (the console script) in its own
process over a database seeded by the product's writers, queried over HTTP: on a SQLite file,
on PostgreSQL, and on PostgreSQL as a login of the read-only BI role (``db grant-readonly``)."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline_lib import db, paths
from pipeline_lib.api.links import report_link
from pipeline_lib.config import Settings, load_settings
from pipeline_lib.store import atomic_write_bytes
from tests.conftest import pg_database

CLI = Path(sys.executable).with_name("forecast-pipeline")
PNG = b"\x89PNG\r\n\x1a\n"
DAY1, DAY2 = dt.date(2024, 3, 1), dt.date(2024, 3, 4)


def _forecast(sid: str, day: dt.date, h: int, model: str, version: str, **band: Any) -> dict:
    yhat = 50.0 + h + (day - DAY1).days / 10
    row = dict(
        series_id=sid,
        forecast_date=day,
        target_date=day + dt.timedelta(days=h),
        horizon=h,
        yhat=yhat,
        yhat_lower=yhat - 2,
        yhat_upper=yhat + 2,
        model=model,
        model_version=version,
    )
    return {**row, **band}


# DE: two nights (the second per-bucket: naive at h=1, linear after); NO_2: one, band missing.
NIGHT1 = [_forecast("DE", DAY1, h, "lstm", "v1") for h in (1, 2, 3)]
NIGHT2 = [_forecast("DE", DAY2, 1, "naive", "baseline-naive")] + [
    _forecast("DE", DAY2, h, "linear", "baseline-linear") for h in (2, 3, 4)
]
NIGHT2 += [
    _forecast("NO_2", DAY2, 1, "mean(ets,naive)", "combo-1"),
    _forecast("NO_2", DAY2, 2, "mean(ets,naive)", "combo-1", yhat_lower=None, yhat_upper=None),
]
VERSIONS = {"v1": "full", "baseline-naive": "baseline", "baseline-linear": "baseline"}
VERSIONS["combo-1"] = "combination"


def seed(url: str) -> None:
    """The schema, two runs and their rows, through the product's writers."""
    engine = db.make_engine(url)
    try:
        db.create_schema(engine)
        for version, kind in VERSIONS.items():
            status = "champion" if kind == "full" else kind
            db.upsert_model_version(engine, {"version": version, "kind": kind, "status": status})
        for run, day, rows in (("run-1", DAY1, NIGHT1), ("run-2", DAY2, NIGHT2)):
            db.start_run(engine, run, "forecast", day)
            db.write_forecasts(engine, pd.DataFrame(rows), run)
        days = pd.date_range("2023-12-01", DAY2 + dt.timedelta(days=1)).date
        actuals = pd.DataFrame({"series_id": "DE", "target_date": days, "actual": 48.5})
        db.write_actuals(engine, actuals, "run-2")
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(folder: Path, config: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``forecast-pipeline serve --config config`` on a free loopback port until the block
    ends (SIGTERM, then SIGKILL); its base URL once it answers /health."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    log_path = folder / f"serve-{port}.log"
    command = [str(CLI), "serve", "--config", str(config), "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**environ, **(env or {})},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"serve exited {proc.returncode}:\n{log_path.read_text()}")
                try:
                    httpx.get(f"{base}/health", timeout=5)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"serve did not answer in 60 s:\n{log_path.read_text()}")
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_config(folder: Path, database_url: str) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'data_dir = "{(folder / "data").as_posix()}"\ndatabase_url = "{database_url}"\n'
    )
    return config


@dataclass
class Served:
    """A running server: its base URL, the settings it runs with (``public_url`` pinned to
    the base URL, as ``--port`` makes it there) and, on PostgreSQL, the names the test needs."""

    kind: str
    base: str
    settings: Settings
    database: str = ""
    login: str = ""


@contextmanager
def bi_login(url: str, folder: Path, config: Path) -> Iterator[str]:
    """The BI group role made by ``forecast-pipeline db grant-readonly`` and a login in it;
    the login's URL. Roles are cluster-wide: dropped at the end, with their privileges."""
    suffix = secrets.token_hex(4)
    role, login = f"forecast_bi_{suffix}", f"bi_api_{suffix}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        done = subprocess.run(
            [str(CLI), "db", "grant-readonly", "--role", role, "--config", str(config)],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")},
        )
        assert done.returncode == 0, done.stderr
        with engine.connect() as conn:
            conn.execute(text(f'CREATE ROLE "{login}" LOGIN IN ROLE "{role}"'))
        yield make_url(url).set(username=login).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT rolname FROM pg_roles WHERE rolname IN (:a, :b)"),
                {"a": login, "b": role},
            ).scalars()
            names = ", ".join(f'"{n}"' for n in found)
            if names:
                conn.execute(text(f"DROP OWNED BY {names}"))
                conn.execute(text(f"DROP ROLE {names}"))
        engine.dispose()


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("postgresql-bi", marks=pytest.mark.postgres),
    ],
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    folder = tmp_path_factory.mktemp(request.param)
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'data' / 'pipeline.db'}"
        else:
            url = stack.enter_context(pg_database(request.getfixturevalue("pg_admin_url")))
        seed(url)
        config = write_config(folder, url)
        env, login = {}, ""
        if request.param == "postgresql-bi":
            reader = stack.enter_context(bi_login(url, folder, config))
            env["PIPELINE_SERVE__DATABASE_URL"] = reader  # the environment wins over the file
            login = make_url(reader).username or ""
        base = stack.enter_context(serving(folder, config, env))
        settings = load_settings(config, serve={"public_url": base})
        yield Served(request.param, base, settings, make_url(url).database or "", login)


def get(api: Served, path: str) -> httpx.Response:
    return httpx.get(f"{api.base}{path}", timeout=60)


def test_health(api: Served) -> None:
    r = get(api, "/health")
    assert r.status_code == 200, r.text
    dialect = "sqlite" if api.kind == "sqlite" else "postgresql"
    assert r.json() == {
        "status": "ok",
        "database": dialect,
        "latest_forecast_date": "2024-03-04",
        "series_count": 2,
    }


def test_series_list(api: Served) -> None:
    r = get(api, "/series")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "count": 2,
        "series": [
            {
                "series_id": "DE",
                "forecast_date": "2024-03-04",
                "horizons": 4,
                "models": ["linear", "naive"],
                "link": f"{api.base}/series/DE",
            },
            {
                "series_id": "NO_2",
                "forecast_date": "2024-03-04",
                "horizons": 2,
                "models": ["mean(ets,naive)"],
                "link": f"{api.base}/series/NO_2",
            },
        ],
    }


def _json_rows(rows: list[dict]) -> list[dict]:
    return [{k: v.isoformat() if isinstance(v, dt.date) else v for k, v in r.items()} for r in rows]


def test_latest_forecast(api: Served) -> None:
    r = get(api, "/forecasts/latest?series=DE")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "series_id": "DE",
        "forecast_date": "2024-03-04",
        "rows": _json_rows(NIGHT2[:4]),
    }
    nulls = get(api, "/forecasts/latest?series=NO_2").json()["rows"]
    assert nulls == _json_rows(NIGHT2[4:])
    assert nulls[1]["yhat_lower"] is None and nulls[1]["yhat_upper"] is None


def test_forecast_range_includes_both_ends(api: Served) -> None:
    r = get(api, "/forecasts?series=DE&from=2024-03-01&to=2024-03-04")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "series_id": "DE",
        "from": "2024-03-01",
        "to": "2024-03-04",
        "count": 7,
        "rows": _json_rows(NIGHT1 + NIGHT2[:4]),  # by forecast date, then target date
    }
    assert get(api, "/forecasts?series=DE&from=2024-03-02&to=2024-03-04").json()["count"] == 4
    assert get(api, "/forecasts?series=DE&from=2024-03-01&to=2024-03-01").json()["count"] == 3
    empty = get(api, "/forecasts?series=DE&from=2023-03-01&to=2024-02-29")  # 366 days: allowed
    assert empty.status_code == 200 and empty.json()["rows"] == []


def test_series_page_and_its_plot(api: Served) -> None:
    r = get(api, "/series/DE")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<img src="/series/DE/plot.png"' in page
    assert "Forecast as of <b>2024-03-04</b>: 4 horizons" in page
    assert "<td>54.30</td>" in page and "baseline-linear" in page  # yhat at h=4, its version
    assert "<td>48.50</td>" in page  # the actual of a target date already observed
    assert "2024-03-04</td>" in page and "actuals from 2023-12-06 to 2024-03-04" in page
    plot = get(api, "/series/DE/plot.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(PNG) and len(plot.content) > 5_000
    assert get(api, "/series/NO_2/plot.png").content.startswith(PNG)  # no actuals, no band


def test_report_files(api: Served) -> None:
    """A nightly's plot under the reports folder, reached at the link the run would show."""
    from pipeline_lib.publishing.plot import save_plot

    data_dir = api.settings.data_dir
    png = PNG + b"plot of " + api.kind.encode()
    saved = save_plot(data_dir, "run-2", DAY2, png)
    link = report_link(api.settings, saved)
    assert link == f"{api.base}/reports/plots/2024-03-04/forecast-run-2.png"
    r = httpx.get(link)
    assert r.status_code == 200 and r.content == png
    assert r.headers["content-type"] == "image/png"
    atomic_write_bytes(paths.reports_dir(data_dir, "runs", "r 1.json"), b'{"ok": true}')
    r = get(api, "/reports/runs/r%201.json")
    assert (r.status_code, r.headers["content-type"], r.json()) == (
        200,
        "application/json",
        {"ok": True},
    )
    for missing in ("/reports/plots/nope.png", "/reports/plots", "/reports/", "/reports/.x"):
        r = get(api, missing)
        assert r.status_code == 404 and r.json()["parameters"] == ["path"], missing
    # a link that leads out of the folder is not followed
    os.symlink(Path(data_dir) / "config-outside.txt", Path(data_dir) / "reports" / "out.txt")
    (Path(data_dir) / "config-outside.txt").write_text("secret")
    assert get(api, "/reports/out.txt").status_code == 404


LEAVING = [
    "/reports/../pipeline.db",
    "/reports/plots/../../pipeline.db",
    "/reports/%2e%2e/pipeline.db",
    "/reports//etc/passwd",
    "/reports/%2Fetc%2Fpasswd",
    "/reports/plots/..%5C..%5Cpipeline.db",
    "/reports/plots/./x.png",
]


def test_report_paths_that_leave_the_folder(api: Served) -> None:
    host, port = api.base.removeprefix("http://").split(":")
    for raw in LEAVING:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)  # sends it as written
        try:
            conn.request("GET", raw)
            response = conn.getresponse()
            status, payload = response.status, response.read()
        finally:
            conn.close()
        assert status == 400, (raw, payload)
        assert b'"parameters":["path"]' in payload and b"reports folder" in payload, raw


LONG = "X" * 65
BAD = [
    ("/forecasts/latest", 422, ["series"], "query parameter 'series' is required"),
    ("/forecasts/latest?series=", 422, ["series"], "'series'"),
    ("/forecasts/latest?series=ZZ", 404, ["series"], "unknown series 'ZZ'"),
    (f"/forecasts/latest?series={LONG}", 422, ["series"], "at most 64 characters"),
    ("/forecasts/latest?series=DE%3B%20DROP", 422, ["series"], "should match pattern"),
    ("/forecasts?from=2024-03-01&to=2024-03-04", 422, ["series"], "'series' is required"),
    ("/forecasts?series=ZZ&from=2024-03-01&to=2024-03-04", 404, ["series"], "unknown series"),
    ("/forecasts?series=DE&to=2024-03-04", 422, ["from"], "'from' is required"),
    ("/forecasts?series=DE&from=2024-03-01", 422, ["to"], "'to' is required"),
    ("/forecasts?series=DE&from=2024-13-01&to=2024-03-04", 422, ["from"], "YYYY-MM-DD"),
    ("/forecasts?series=DE&from=2024-02-30&to=2024-03-04", 422, ["from"], "'2024-02-30'"),
    ("/forecasts?series=DE&from=2024-03-01&to=4%20March", 422, ["to"], "'4 March'"),
    ("/forecasts?series=DE&from=1709251200&to=2024-03-04", 422, ["from"], "YYYY-MM-DD"),
    ("/forecasts?series=DE&from=2024-03-04&to=2024-03-01", 422, ["from", "to"], "is after"),
    ("/forecasts?series=DE&from=2023-03-01&to=2024-03-01", 422, ["from", "to"], "367 days"),
    ("/series/ZZ", 404, ["series_id"], "unknown series 'ZZ'"),
    ("/series/ZZ/plot.png", 404, ["series_id"], "unknown series 'ZZ'"),
    (f"/series/{LONG}", 422, ["series_id"], "at most 64 characters"),
]


def test_bad_parameters_name_the_parameter(api: Served) -> None:
    for path, status, names, words in BAD:
        r = get(api, path)
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"] == "application/json", path
        found = r.json()
        assert found["parameters"] == names, (path, found)
        assert words in found["detail"], (path, found["detail"])


@pytest.mark.postgres
@pytest.mark.parametrize("api", ["postgresql-bi"], indirect=True)
def test_the_bi_login_is_who_reads(api: Served) -> None:
    """The server runs as the BI login (PIPELINE_SERVE__DATABASE_URL), which can only SELECT."""
    assert api.kind == "postgresql-bi"
    assert get(api, "/forecasts/latest?series=DE").status_code == 200
    admin = create_engine(api.settings.db_url)
    try:
        with admin.connect() as conn:
            users = conn.execute(
                text("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = :d"),
                {"d": api.database},
            ).scalars()
            assert api.login in set(users)
            allowed = conn.execute(
                text("SELECT has_table_privilege(:u, 'forecasts', 'INSERT')"), {"u": api.login}
            ).scalar()
            assert allowed is False
    finally:
        admin.dispose()


def test_a_database_that_does_not_answer_is_a_503(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pipeline.db"
    config = write_config(tmp_path, f"sqlite:///{missing}")
    with serving(tmp_path, config) as base:
        r = httpx.get(f"{base}/health", timeout=30)
        assert r.status_code == 503
        found = r.json()
        assert found["status"] == "unavailable" and found["database"] == "sqlite"
        assert "cannot be read: unable to open database file" in found["detail"]
        assert str(missing) in found["detail"]
        r = httpx.get(f"{base}/forecasts/latest?series=DE", timeout=30)
        assert r.status_code == 503 and "cannot be read" in r.json()["detail"]
    assert not missing.exists() and not missing.parent.exists()  # read-only: nothing made


def test_a_port_in_use_is_an_error_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'pipeline.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(CLI), "serve", "--config", str(config), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")},
        )
    assert done.returncode == 1, done.stderr
    assert f"error: serve: cannot listen on 127.0.0.1:{port}" in done.stderr
