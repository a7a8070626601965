"""Weather forecasts as issued (Open-Meteo previous runs and forecast APIs) against the replay
server: the requests, daily aggregates by lead, landing, ingest and commit, errors, secrets."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from pipeline_lib import schema
from pipeline_lib.config import HttpConfig, Location, load_settings
from pipeline_lib.ingest import curate, gate, landing
from pipeline_lib.ingest.sources import OpenMeteoRunsSource, ParseError, SourceError
from pipeline_lib.ingest.sources.http import HttpClient
from pipeline_lib.ingest.sources.open_meteo_runs import read_runs_json
from pipeline_lib.store import land_raw
from tests.replay_server import ReplayServer, Reply

D = dt.date
BERLIN = Location(name="berlin", latitude=52.52, longitude=13.41, timezone="Europe/Berlin")
PREVIOUS, FORECAST = "/prev/v1/forecast", "/v1/forecast"
RUNS_FILE, FORECAST_FILE = (
    "open_meteo_previous_runs_berlin.json",
    "open_meteo_forecast_hourly_berlin.json",
)
SECRET = "s3cr3t-K3Y-0123456789"


def client() -> HttpClient:
    return HttpClient(
        HttpConfig(
            connect_timeout_s=1.0,
            read_timeout_s=1.0,
            max_attempts=3,
            backoff_initial_s=0.001,
            backoff_max_s=0.01,
            rate_limit_per_s=1000.0,
        )
    )


def runs(server: ReplayServer, **kwargs: object) -> OpenMeteoRunsSource:
    kwargs.setdefault("client", client())
    return OpenMeteoRunsSource(
        BERLIN,
        ["temp_max", "precipitation", "wind_speed"],
        2,
        previous_runs_url=server.url(PREVIOUS),
        forecast_url=server.url(FORECAST),
        today=lambda: D(2024, 3, 6),
        **kwargs,  # type: ignore[arg-type]
    )


def serve(server: ReplayServer) -> None:
    server.add(PREVIOUS, Reply(body=server.file(RUNS_FILE)))
    server.add(FORECAST, Reply(body=server.file(FORECAST_FILE)))


def hourly(server: ReplayServer, name: str, variable: str, day: str) -> pd.Series:
    data = json.loads(server.file(name))["hourly"]
    times = pd.Series(data["time"])
    return pd.Series(data[variable], dtype="float64")[times.str.startswith(day).to_numpy()]


def test_previous_runs_for_past_issue_days_and_the_forecast_api_for_today(
    replay_server: ReplayServer, tmp_path: Path
) -> None:
    serve(replay_server)
    src = runs(replay_server)
    payloads = src.fetch(D(2024, 3, 4), D(2024, 3, 6))
    assert [p.request["api"] for p in payloads] == ["previous_runs", "forecast"]
    [prev] = replay_server.requests_to(PREVIOUS)
    [fc] = replay_server.requests_to(FORECAST)
    # issued 03-04 and 03-05, one and two days ahead: the target days 03-05 to 03-07
    assert (prev.query["start_date"], prev.query["end_date"]) == ("2024-03-05", "2024-03-07")
    assert prev.query["hourly"].split(",") == [
        f"{v}_previous_day{h}"
        for h in (1, 2)
        for v in ("temperature_2m", "precipitation", "wind_speed_10m")
    ]
    assert prev.query["timezone"] == "Europe/Berlin" and prev.query["wind_speed_unit"] == "ms"
    assert prev.query["temperature_unit"] == "celsius" and prev.query["precipitation_unit"] == "mm"
    assert "models" not in prev.query and "apikey" not in prev.query
    # issued today (03-06): the live forecast of 03-07 and 03-08, variables without suffix
    assert (fc.query["start_date"], fc.query["end_date"]) == ("2024-03-07", "2024-03-08")
    assert fc.query["hourly"] == "temperature_2m,precipitation,wind_speed_10m"
    assert payloads[0].content == replay_server.file(RUNS_FILE)
    assert payloads[0].dataset == schema.COVARIATES and payloads[0].key == "weather_forecast-berlin"
    raw = land_raw(str(tmp_path), payloads[0])
    assert "dataset=covariates/source=open_meteo_runs/key=weather_forecast-berlin" in raw

    past = read_runs_json(payloads[0])
    assert list(past.columns) == ["date", "issued", "temp_max", "precipitation", "wind_speed"]
    assert [(r.date.day, r.issued.day) for r in past.itertuples()] == [
        (5, 4), (6, 5), (6, 4), (7, 5),  # lead 1, then lead 2
    ]  # fmt: skip
    by = past.set_index(["date", "issued"])
    lead1 = by.loc[(pd.Timestamp("2024-03-05"), pd.Timestamp("2024-03-04"))]
    temps = hourly(replay_server, RUNS_FILE, "temperature_2m_previous_day1", "2024-03-05")
    rain = hourly(replay_server, RUNS_FILE, "precipitation_previous_day1", "2024-03-05")
    assert len(temps) == 24 and lead1["temp_max"] == temps.max()
    assert lead1["precipitation"] == pytest.approx(rain.sum())
    lead2 = by.loc[(pd.Timestamp("2024-03-06"), pd.Timestamp("2024-03-04"))]
    winds = hourly(replay_server, RUNS_FILE, "wind_speed_10m_previous_day2", "2024-03-06")
    assert lead2["wind_speed"] == winds.max()
    # 03-07 as forecast two days ahead lacks an hour of wind: no value, the others are kept
    gap = by.loc[(pd.Timestamp("2024-03-07"), pd.Timestamp("2024-03-05"))]
    assert np.isnan(gap["wind_speed"]) and not np.isnan(gap["temp_max"])

    today = read_runs_json(payloads[1])
    assert [(r.date.day, r.issued.day) for r in today.itertuples()] == [(7, 6), (8, 6)]
    temps = hourly(replay_server, FORECAST_FILE, "temperature_2m", "2024-03-08")
    assert today.loc[1, "temp_max"] == temps.max()


def test_plan_chunks_issue_days_and_skips_days_before_since(replay_server: ReplayServer) -> None:
    src = runs(replay_server, chunk_days=10, since=D(2024, 1, 5))
    assert src.plan(D(2023, 12, 1), D(2024, 1, 30)) == [
        ("previous_runs", D(2024, 1, 5), D(2024, 1, 14)),
        ("previous_runs", D(2024, 1, 15), D(2024, 1, 24)),
        ("previous_runs", D(2024, 1, 25), D(2024, 1, 30)),
    ]
    assert src.plan(D(2024, 3, 6), D(2024, 3, 8)) == [("forecast", D(2024, 3, 6), D(2024, 3, 6))]


def _settings(tmp_path: Path, server: ReplayServer, **options: object):
    covariate = {
        "role": "future", "source": "weather", "known_ahead": 2,
        "options": {"previous_runs_url": server.url(PREVIOUS), **options},
    }  # fmt: skip
    return load_settings(
        data_dir=str(tmp_path),
        start_date="2024-03-04",
        weather_source={"kind": "open_meteo"},  # built, never asked here
        series=[
            {
                "id": "DE",
                "frequency": "D",
                "source": {"kind": "sample", "options": {"symbol": "entsoe_DE"}},
                "weather": BERLIN.model_dump(),
                "covariates": [
                    {**covariate, "name": "tmax_fc", "column": "temp_max"},
                    {**covariate, "name": "wind_fc", "column": "wind_speed"},
                ],
            }
        ],
    )


def test_ingest_lands_validates_and_commits_values_issued_days_ahead(
    replay_server: ReplayServer, tmp_path: Path
) -> None:
    serve(replay_server)
    settings = _settings(tmp_path, replay_server)
    [built] = [s for s in landing.sources_for(settings) if isinstance(s, OpenMeteoRunsSource)]
    assert built.previous_runs_url == replay_server.url(PREVIOUS) and built.leads == 2
    assert built.columns == ["temp_max", "wind_speed"]
    as_of = D(2024, 3, 5)
    batch = landing.ingest_source(settings, runs(replay_server), as_of)
    assert batch.dataset == schema.COVARIATES and batch.window == (D(2024, 3, 4), as_of)
    assert all(Path(p).exists() for p in batch.raw_paths) and len(batch.raw_paths) == 1
    gate.check_batches(settings.data_dir, [batch], as_of, thresholds=settings.validation)
    curate.commit_batches(settings.data_dir, [batch])
    stored = curate.read_covariates(settings.data_dir, ["DE"], as_of)
    ahead = (stored["date"] - stored["issued"]).dt.days
    assert set(ahead) == {1, 2} and (stored["issued"] <= pd.Timestamp(as_of)).all()
    counts = stored.groupby("covariate").size().to_dict()
    assert counts == {"tmax_fc": 4, "wind_fc": 3}  # wind of 03-07 two days ahead lacks an hour
    # the watermark is the newest issue day: a rerun asks nothing; a backfill's again, no duplicate
    assert landing.ingest_source(settings, runs(replay_server), as_of).data.empty
    again = landing.ingest_source(settings, runs(replay_server), as_of, start=D(2024, 3, 4))
    assert len(again.data) == 7 and len(replay_server.requests_to(PREVIOUS)) == 2
    curate.commit_batches(settings.data_dir, [again])
    assert len(curate.read_covariates(settings.data_dir, ["DE"], as_of)) == 7


def test_errors_are_clear_and_retried_and_the_key_never_shows(
    replay_server: ReplayServer,
) -> None:
    body = json.loads(replay_server.file(RUNS_FILE))
    del body["hourly"]["wind_speed_10m_previous_day2"]
    replay_server.add(PREVIOUS, Reply(500), Reply(body=json.dumps(body).encode()))
    src = runs(replay_server, api_key=SECRET, models="icon_seamless")
    [p] = src.fetch(D(2024, 3, 4), D(2024, 3, 5))
    assert [r.query["apikey"] for r in replay_server.requests] == [SECRET, SECRET]
    assert replay_server.requests[0].query["models"] == "icon_seamless"
    assert p.request["params"]["apikey"] == "***" and SECRET not in json.dumps(p.request)
    with pytest.raises(ParseError, match="no 'wind_speed_10m_previous_day2' array"):
        read_runs_json(p)
    replay_server.add(PREVIOUS, Reply(400, b'{"error":true,"reason":"Parameter start_date"}'))
    with pytest.raises(SourceError, match="previous_runs weather forecasts for location 'berlin'"):
        src.fetch(D(2024, 3, 4), D(2024, 3, 5))


def test_the_credential_option_sends_the_key(replay_server: ReplayServer, tmp_path: Path) -> None:
    settings = _settings(tmp_path, replay_server, credential="open_meteo")
    settings = settings.model_copy(update={"credentials": {"open_meteo": SecretStr(SECRET)}})
    [built] = [s for s in landing.sources_for(settings) if isinstance(s, OpenMeteoRunsSource)]
    assert built._api_key == SECRET and SECRET not in repr(built)
    assert built.forecast_url.startswith("https://customer-api.open-meteo.com")
