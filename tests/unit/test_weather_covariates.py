"""Weather as covariates: observed (past) from curated weather, forecasts as issued (future)."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import SEATTLE, HttpConfig, load_settings
from pipeline_lib.errors import ConfigError
from pipeline_lib.features.stage import load_features, refresh_features
from pipeline_lib.ingest import curate, gate, landing
from pipeline_lib.ingest.sources import OpenMeteoRunsSource
from pipeline_lib.ingest.sources.http import HttpClient

D = dt.date
OBS = {"name": "tmax_obs", "role": "past", "source": "weather", "column": "temp_max"}
FC = {
    "name": "tmax_fc", "role": "future", "source": "weather", "column": "temp_max",
    "known_ahead": 2, "options": {"since": "2015-06-01"},
}  # fmt: skip


def _value(day: dt.date, lead: int) -> float:
    """The fake forecast of ``day`` made ``lead`` days before: its day of month, lead tenths."""
    return day.day + lead / 10


def _fake_open_meteo(request: httpx.Request) -> httpx.Response:
    """Open-Meteo's previous runs (``_previous_dayN``) and forecast APIs, hourly, made up from
    the request: every hour of day d as forecast h days before is ``_value(d, h)``; the live
    forecast (issued the day before ``start_date``) adds 100."""
    q = request.url.params
    first, last = (D.fromisoformat(q[k]) for k in ("start_date", "end_date"))
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    hourly: dict[str, list] = {"time": [f"{d}T{h:02d}:00" for d in days for h in range(24)]}
    for name in q["hourly"].split(","):
        _, _, lead = name.partition("_previous_day")
        hourly[name] = [
            _value(d, int(lead)) if lead else 100 + _value(d, (d - first).days + 1)
            for d in days
            for _ in range(24)
        ]
    return httpx.Response(200, json={"timezone": q["timezone"], "hourly": hourly})


def _forecasts(today: dt.date) -> OpenMeteoRunsSource:
    client = HttpClient(
        HttpConfig(rate_limit_per_s=1000.0), transport=httpx.MockTransport(_fake_open_meteo)
    )
    return OpenMeteoRunsSource(
        SEATTLE, ["temp_max"], 2, client, since=D(2015, 6, 1), today=lambda: today
    )


def _settings(tmp_path, covariates: list[dict]):
    return load_settings(
        data_dir=str(tmp_path),
        start_date="2015-06-01",
        series=[{"id": "SP500", "weather": SEATTLE.model_dump(), "covariates": covariates}],
    )


def _run(settings, as_of: dt.date, today: dt.date) -> pd.DataFrame:
    """The nightly ingest (the forecasts from the fake API), then the features of ``as_of``."""
    sources = [s for s in landing.sources_for(settings) if not isinstance(s, OpenMeteoRunsSource)]
    batches = [landing.ingest_source(settings, s, as_of) for s in [*sources, _forecasts(today)]]
    gate.check_batches(settings.data_dir, batches, as_of, thresholds=settings.validation)
    curate.commit_batches(settings.data_dir, batches)
    refresh_features(settings, as_of)
    return load_features(settings, as_of).set_index(schema.DATE)


def test_a_past_weather_covariate_is_the_curated_weather_of_the_day(tmp_path):
    settings = _settings(tmp_path, [OBS])
    as_of = D(2015, 6, 30)
    feats = _run(settings, as_of, today=as_of)
    weather = curate.read_curated(settings.data_dir, schema.WEATHER, ["seattle"], as_of)
    observed = weather.set_index(schema.DATE)["temp_max"].reindex(feats.index)
    assert observed.notna().sum() >= 20
    pd.testing.assert_series_equal(feats["tmax_obs"], observed, check_names=False)
    # not stored twice: computed from curated weather in the features stage
    assert curate.read_covariates(settings.data_dir, ["SP500"], as_of).empty


def test_a_future_weather_covariate_is_the_forecast_issued_h_days_before(tmp_path):
    settings = _settings(tmp_path, [FC])
    monday = D(2015, 6, 29)
    before = _run(settings, monday, today=D(2015, 6, 30))  # issued up to 06-29: previous runs
    stored = curate.read_covariates(settings.data_dir, ["SP500"], monday)
    ahead = (stored[schema.DATE] - stored[schema.ISSUED]).dt.days
    assert set(ahead) == {1, 2}
    expected = [_value(d.date(), h) for d, h in zip(stored[schema.DATE], ahead, strict=True)]
    assert np.allclose(stored[schema.VALUE], expected)
    wednesday = before.loc["2015-06-24"]
    assert wednesday["tmax_fc@1"] == _value(D(2015, 6, 25), 1)  # issued 06-24
    assert wednesday["tmax_fc@2"] == _value(D(2015, 6, 26), 2)  # issued 06-24
    assert wednesday["tmax_fc"] == _value(D(2015, 6, 24), 1)  # the latest issued by 06-24
    friday = before.loc["2015-06-26"]
    assert np.isnan(friday["tmax_fc@1"])  # Monday is 3 days ahead: beyond known_ahead
    assert before.loc["2015-06-29", "tmax_fc@2"] == _value(D(2015, 7, 1), 2)

    # the next night: today's live forecast, issued 06-30, revises 07-01 (and adds 07-02)
    after = _run(settings, D(2015, 6, 30), today=D(2015, 6, 30))
    tuesday = after.loc["2015-06-30"]
    assert tuesday["tmax_fc@1"] == 100 + _value(D(2015, 7, 1), 1)
    assert tuesday["tmax_fc@2"] == 100 + _value(D(2015, 7, 2), 2)
    # ... and changes nothing dated before it: 06-29 still sees 07-01 as issued on 06-29
    pd.testing.assert_frame_equal(after.loc[:"2015-06-29"], before)


def _series(covariates: list[dict], **extra: object) -> dict:
    return {"id": "DE", "frequency": "D", "covariates": covariates, **extra}


BERLIN = {"name": "berlin", "latitude": 52.52, "longitude": 13.41, "timezone": "Europe/Berlin"}


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ([_series([OBS])], "series 'DE': weather covariate(s) ['tmax_obs'] read the weather"),
        ([_series([{**FC, "column": None}], weather=BERLIN)], "needs column = one of temp_max"),
        ([_series([{**FC, "known_ahead": 8}], weather=BERLIN)], "reach 7 days ahead"),
        ([_series([{**FC, "options": {"url": "x"}}], weather=BERLIN)], "unknown option(s) ['url']"),
        ([_series([{**OBS, "options": {"since": "2024-01-01"}}], weather=BERLIN)], "no options"),
        (
            [
                _series([FC], weather=BERLIN),
                {"id": "FR", "weather": BERLIN, "covariates": [{**FC, "options": {}}]},
            ],
            "options must match",
        ),
    ],
)
def test_bad_weather_covariates_are_config_errors(series, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(series=series)
