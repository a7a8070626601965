"""Live HTTP sources against a local replay server: parsing, retries, limits, secrets."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from pydantic import SecretStr

from pipeline_lib import schema
from pipeline_lib.config import SEATTLE, HttpConfig, Location, SeriesConfig, Settings, SourceSpec
from pipeline_lib.ingest.sources import (
    OpenMeteoSource,
    ParseError,
    SampleSource,
    SourceError,
    StooqSource,
    YahooChartSource,
    filter_dates,
    parse_payload,
    price_source,
    weather_source,
)
from pipeline_lib.ingest.sources.http import HttpClient, HttpStatusError
from pipeline_lib.ingest.sources.redaction import redact_url
from pipeline_lib.ingest.sources.throttle import RateLimiter
from pipeline_lib.store import land_raw
from tests.replay_server import ReplayServer, Reply

D = dt.date
SEATTLE_TZ = Location(
    name="seattle", latitude=47.6062, longitude=-122.3321, timezone="America/Los_Angeles"
)
ARCHIVE, FORECAST = "/v1/archive", "/v1/forecast"
STOOQ, YAHOO = "/q/d/l/", "/v8/finance/chart"
SECRET = "s3cr3t-K3Y-0123456789"


def http(**overrides: object) -> HttpConfig:
    """Tiny timeouts and back-off so failures are fast."""
    base = dict(
        connect_timeout_s=1.0, read_timeout_s=0.25, max_attempts=3, backoff_initial_s=0.001,
        backoff_max_s=0.01, rate_limit_per_s=1000.0, max_response_bytes=100_000,
    )  # fmt: skip
    return HttpConfig(**{**base, **overrides})


def client(**overrides: object) -> HttpClient:
    return HttpClient(http(**overrides))


def open_meteo(server: ReplayServer, **kwargs: object) -> OpenMeteoSource:
    kwargs.setdefault("client", client())
    return OpenMeteoSource(
        SEATTLE_TZ,
        archive_url=server.url(ARCHIVE),
        forecast_url=server.url(FORECAST),
        today=lambda: D(2015, 12, 20),
        **kwargs,  # type: ignore[arg-type]
    )


def stooq(server: ReplayServer, http_client: HttpClient | None = None) -> StooqSource:
    return StooqSource("SP500", "^spx", http_client or client(), base_url=server.url(STOOQ))


def yahoo(server: ReplayServer, http_client: HttpClient | None = None) -> YahooChartSource:
    return YahooChartSource("MSFT", "MSFT", http_client or client(), base_url=server.url(YAHOO))


def sample(dataset: str, key: str, start: D, end: D) -> pd.DataFrame:
    [p] = SampleSource(dataset, key).fetch(start, end)
    return parse_payload(p)


# --- each source fetches and parses to the schema


def test_open_meteo_archive_then_forecast(replay_server: ReplayServer) -> None:
    replay_server.add(ARCHIVE, Reply(body=replay_server.file("open_meteo_archive_seattle.json")))
    replay_server.add(FORECAST, Reply(body=replay_server.file("open_meteo_forecast_seattle.json")))
    payloads = open_meteo(replay_server).fetch(D(2015, 12, 10), D(2015, 12, 26))
    assert [p.request["api"] for p in payloads] == ["archive", "forecast"]
    [archive] = replay_server.requests_to(ARCHIVE)
    [forecast] = replay_server.requests_to(FORECAST)
    assert (archive.query["start_date"], archive.query["end_date"]) == ("2015-12-10", "2015-12-19")
    assert (forecast.query["start_date"], forecast.query["end_date"]) == (
        "2015-12-20",
        "2015-12-26",
    )
    assert archive.query["daily"].split(",") == [
        "temperature_2m_max", "temperature_2m_min", "temperature_2m_mean",
        "precipitation_sum", "wind_speed_10m_max",
    ]  # fmt: skip
    assert archive.query["timezone"] == "America/Los_Angeles"
    assert archive.query["wind_speed_unit"] == "ms" and archive.query["latitude"] == "47.6062"
    assert payloads[0].content == replay_server.file("open_meteo_archive_seattle.json")
    assert payloads[0].media_type == "application/json" and payloads[0].source == "open_meteo"
    df = pd.concat([parse_payload(p) for p in payloads], ignore_index=True)
    assert list(df.columns) == schema.WEATHER_COLUMNS and len(df) == 17
    assert df["date"].dtype == "datetime64[ns]" and set(df["location"]) == {"seattle"}
    expected = sample("weather", "seattle", D(2015, 12, 10), D(2015, 12, 26))
    cols = ["date", "temp_max", "temp_min", "precipitation", "wind_speed"]
    pd.testing.assert_frame_equal(df[cols], expected[cols])


def test_open_meteo_plan_and_extra_variables(replay_server: ReplayServer) -> None:
    src = open_meteo(replay_server, daily=["sunshine_duration"], archive_lag_days=5)
    assert src.daily[-1] == "sunshine_duration"
    assert src.plan(D(2015, 12, 1), D(2015, 12, 10)) == [
        ("archive", D(2015, 12, 1), D(2015, 12, 10))
    ]
    assert src.plan(D(2015, 12, 1), D(2016, 2, 1)) == [
        ("archive", D(2015, 12, 1), D(2015, 12, 14)),
        ("forecast", D(2015, 12, 15), D(2016, 1, 4)),  # 16 days from today at most
    ]
    assert src.plan(D(2016, 3, 1), D(2016, 3, 5)) == []
    replay_server.add(FORECAST, Reply(body=replay_server.file("open_meteo_forecast_seattle.json")))
    [p] = src.fetch_forecast(7)
    [req] = replay_server.requests
    assert (req.query["start_date"], req.query["end_date"]) == ("2015-12-20", "2015-12-26")
    assert req.query["daily"].endswith(",sunshine_duration")
    assert len(parse_payload(p)) == 7


def test_stooq_fetches_csv(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=replay_server.file("stooq_spx.csv")))
    [p] = stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    [req] = replay_server.requests
    assert req.query == {"s": "^spx", "d1": "20151214", "d2": "20151228", "i": "d"}
    assert p.content == replay_server.file("stooq_spx.csv") and p.media_type == "text/csv"
    assert p.request["params"]["s"] == "^spx" and p.request["status"] == 200
    df = parse_payload(p)
    assert list(df.columns) == schema.PRICE_COLUMNS and len(df) == 10
    expected = sample("prices", "SP500", D(2015, 12, 14), D(2015, 12, 28))
    assert list(df["date"]) == list(expected["date"])
    assert (df["close"] - expected["close"]).abs().max() < 0.006
    assert set(df["series_id"]) == {"SP500"}


def test_yahoo_chart_dates_in_exchange_time_zone(replay_server: ReplayServer) -> None:
    replay_server.add(f"{YAHOO}/MSFT", Reply(body=replay_server.file("yahoo_chart_msft.json")))
    [p] = yahoo(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    [req] = replay_server.requests
    assert req.query["interval"] == "1d"
    assert int(req.query["period1"]) <= 1450051200 and int(req.query["period2"]) >= 1451347200
    df = parse_payload(p)
    assert list(df.columns) == schema.PRICE_COLUMNS and len(df) == 10
    expected = sample("prices", "MSFT", D(2015, 12, 14), D(2015, 12, 28))
    assert list(df["date"]) == list(expected["date"])
    assert (df["close"] - expected["close"]).abs().max() < 1e-3
    assert df["volume"].iloc[0] == expected["volume"].iloc[0]


def test_yahoo_dates_fall_back_to_gmtoffset(replay_server: ReplayServer) -> None:
    data = json.loads(replay_server.file("yahoo_chart_msft.json"))
    meta = data["chart"]["result"][0]["meta"]
    del meta["exchangeTimezoneName"]
    meta["gmtoffset"] = -18000
    data["chart"]["result"][0]["timestamp"][0] = 1450069200  # 2015-12-14 00:00 New York
    replay_server.add(f"{YAHOO}/MSFT", Reply(body=json.dumps(data).encode()))
    [p] = yahoo(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert parse_payload(p)["date"].iloc[0] == pd.Timestamp("2015-12-14")


def test_factory_builds_http_sources(replay_server: ReplayServer) -> None:
    settings = Settings(
        http=http(),
        weather_source=SourceSpec(
            kind="open_meteo", options={"archive_url": replay_server.url(ARCHIVE)}
        ),
    )
    src = weather_source(settings, SEATTLE)
    assert isinstance(src, OpenMeteoSource) and src.key == "seattle"
    assert src.client.config == settings.http
    replay_server.add(ARCHIVE, Reply(body=replay_server.file("open_meteo_archive_seattle.json")))
    [p] = src.fetch(D(2015, 12, 10), D(2015, 12, 19))  # long past: the archive only
    assert len(parse_payload(p)) == 10
    spx = SeriesConfig(id="SP500", source=SourceSpec(kind="stooq", options={"symbol": "^spx"}))
    msft = SeriesConfig(id="MSFT", source=SourceSpec(kind="yahoo_chart"))
    assert isinstance(price_source(spx, settings), StooqSource)
    assert price_source(msft, settings).symbol == "MSFT"  # type: ignore[attr-defined]
    with pytest.raises(SourceError, match="kind 'open_meteo' serves weather only"):
        price_source(SeriesConfig(id="X", source=SourceSpec(kind="open_meteo")), settings)
    missing = Settings(weather_source=SourceSpec(kind="open_meteo", options={"credential": "om"}))
    with pytest.raises(SourceError, match="credential 'om' .*PIPELINE_CREDENTIALS__OM"):
        weather_source(missing, SEATTLE)


# --- retries


def test_500_then_success_is_retried(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(500), Reply(body=replay_server.file("stooq_spx.csv")))
    [p] = stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert len(replay_server.requests) == 2 and p.request["attempts"] == 2
    assert len(parse_payload(p)) == 10


def test_503_forever_names_source_series_dates_attempts(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(503, b"down for maintenance"))
    with pytest.raises(SourceError) as info:
        stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    message = str(info.value)
    assert "stooq prices for series 'SP500' (symbol ^spx), 2015-12-14 to 2015-12-28" in message
    assert "after 3 attempts" in message and "HTTP 503" in message
    assert len(replay_server.requests) == 3


def test_404_is_not_retried(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(404, b"Not Found"))
    with pytest.raises(HttpStatusError, match=r"HTTP 404 .*not retried.*Not Found") as info:
        stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert info.value.status == 404 and len(replay_server.requests) == 1


@pytest.mark.parametrize(("retry_after", "slept"), [("1", 1.0), ("120", 2.0)])
def test_429_honours_retry_after_capped(
    replay_server: ReplayServer, retry_after: str, slept: float
) -> None:
    waits: list[float] = []
    http_client = HttpClient(http(backoff_max_s=2.0), sleep=waits.append)
    too_many = Reply(429, b"slow down", headers={"Retry-After": retry_after})
    replay_server.add(STOOQ, too_many, Reply(body=replay_server.file("stooq_spx.csv")))
    stooq(replay_server, http_client).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert waits == [slept] and len(replay_server.requests) == 2


def test_backoff_grows_with_jitter(replay_server: ReplayServer) -> None:
    waits: list[float] = []
    config = http(backoff_initial_s=1.0, backoff_max_s=3.0, max_attempts=4)
    replay_server.add(STOOQ, Reply(502))
    with pytest.raises(SourceError, match="after 4 attempts: HTTP 502"):
        stooq(replay_server, HttpClient(config, sleep=waits.append)).fetch(
            D(2024, 1, 1), D(2024, 1, 9)
        )
    assert len(waits) == 3
    assert 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 3.0 and waits[2] == 3.0


def test_timeout_then_success(replay_server: ReplayServer) -> None:
    slow = Reply(body=replay_server.file("stooq_spx.csv"), delay=0.6)
    replay_server.add(STOOQ, slow, Reply(body=replay_server.file("stooq_spx.csv")))
    [p] = stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert len(replay_server.requests) == 2 and len(parse_payload(p)) == 10


def test_always_timing_out_is_a_clear_error(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=b"late", delay=0.6))
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"after 3 attempts: timed out \(read timeout 0.25 s\)"):
        stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert time.monotonic() - started < 3


def test_connection_refused_is_a_clear_error() -> None:
    with ReplayServer() as server:
        url = server.url(STOOQ)
    src = StooqSource("SP500", "^spx", client(), base_url=url)
    with pytest.raises(SourceError, match="after 3 attempts: connection failed: ConnectError"):
        src.fetch(D(2015, 12, 14), D(2015, 12, 28))


def test_dropped_connection_is_retried(replay_server: ReplayServer) -> None:
    body = replay_server.file("stooq_spx.csv")
    replay_server.add(STOOQ, Reply(body=body, truncate_at=100), Reply(drop=True), Reply(body=body))
    [p] = stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert p.content == body and len(replay_server.requests) == 3


# --- bad bodies


def test_empty_response_is_a_clear_error(replay_server: ReplayServer) -> None:
    replay_server.add(f"{YAHOO}/MSFT", Reply(body=b""))
    with pytest.raises(SourceError, match=r"MSFT.*after 3 attempts: HTTP 200 with an empty body"):
        yahoo(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))


def test_truncated_json_lands_then_fails_parsing(replay_server: ReplayServer) -> None:
    body = replay_server.file("open_meteo_archive_seattle.json")
    replay_server.add(ARCHIVE, Reply(body=body[: len(body) // 2]))
    [p] = open_meteo(replay_server).fetch(D(2015, 12, 10), D(2015, 12, 19))
    assert p.content == body[: len(body) // 2]  # landed as received
    with pytest.raises(ParseError, match=r"weather file 'open_meteo-archive-seattle.*truncated"):
        parse_payload(p)


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (b'{"daily": {"time": [1,]}}', r"not valid JSON: Expecting value at line 1"),
        (b'{"latitude": 47.6, "hourly": {}}', r"no 'daily' object .*keys: latitude, hourly"),
        (
            b'{"daily": {"time": ["2015-12-10", "2015-12-11"], "temperature_2m_max": [1.0],'
            b' "temperature_2m_min": [0, 0], "precipitation_sum": [0, 0],'
            b' "wind_speed_10m_max": [1, 1]}}',
            r"'daily.temperature_2m_max' has 1 values but 'daily.time' has 2",
        ),
        (
            b'{"daily_units": {"wind_speed_10m_max": "km/h"}, "daily": {"time": ["2015-12-10"],'
            b' "temperature_2m_max": [1], "temperature_2m_min": [0], "precipitation_sum": [0],'
            b' "wind_speed_10m_max": [3]}}',
            r"'wind_speed_10m_max' is in km/h, expected m/s",
        ),
        (b'{"error": true, "reason": "Invalid date"}', r"Open-Meteo answered with an error"),
    ],
    ids=["malformed", "no-daily", "unequal-lengths", "wrong-units", "error-object"],
)
def test_bad_open_meteo_json_is_a_parse_error(
    replay_server: ReplayServer, body: bytes, pattern: str
) -> None:
    replay_server.add(ARCHIVE, Reply(body=body))
    [p] = open_meteo(replay_server).fetch(D(2015, 12, 10), D(2015, 12, 11))
    with pytest.raises(ParseError, match=pattern) as info:
        parse_payload(p)
    assert "location seattle, source open_meteo" in str(info.value)


def test_open_meteo_nulls_become_missing_values(replay_server: ReplayServer) -> None:
    data = json.loads(replay_server.file("open_meteo_archive_seattle.json"))
    data["daily"]["precipitation_sum"][-1] = None
    replay_server.add(ARCHIVE, Reply(body=json.dumps(data).encode()))
    [p] = open_meteo(replay_server).fetch(D(2015, 12, 10), D(2015, 12, 19))
    df = parse_payload(p)
    assert df["precipitation"].isna().tolist() == [False] * 9 + [True]


def test_bad_yahoo_json_is_a_parse_error(replay_server: ReplayServer) -> None:
    data = json.loads(replay_server.file("yahoo_chart_msft.json"))
    data["chart"]["result"][0]["indicators"]["quote"][0]["close"].pop()
    replay_server.add(f"{YAHOO}/MSFT", Reply(body=json.dumps(data).encode()))
    [p] = yahoo(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    with pytest.raises(ParseError, match=r"'quote\[0\].close' has 9 values but 'timestamp' has 10"):
        parse_payload(p)


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "streamed"])
def test_response_over_the_cap_is_refused(replay_server: ReplayServer, send_length: bool) -> None:
    replay_server.add(
        STOOQ, Reply(body=b"Date,Close\n" + b"2024-01-02,1\n" * 20_000, send_length=send_length)
    )
    with pytest.raises(SourceError, match=r"larger than http.max_response_bytes \(100,000 bytes\)"):
        stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert len(replay_server.requests) == 1


# --- source-specific answers


def test_yahoo_unknown_symbol(replay_server: ReplayServer) -> None:
    replay_server.add(f"{YAHOO}/NOPE", Reply(404, replay_server.file("yahoo_chart_not_found.json")))
    src = YahooChartSource("X", "NOPE", client(), base_url=replay_server.url(YAHOO))
    expected = r"symbol NOPE.*HTTP 404: Not Found: No data found, symbol may be delisted"
    with pytest.raises(SourceError, match=expected):
        src.fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert len(replay_server.requests) == 1


def test_yahoo_chart_error_in_a_200_answer(replay_server: ReplayServer) -> None:
    error = {"result": None, "error": {"code": "Bad Request", "description": "Invalid input"}}
    replay_server.add(f"{YAHOO}/MSFT", Reply(body=json.dumps({"chart": error}).encode()))
    with pytest.raises(
        SourceError, match="Yahoo answered with an error: Bad Request: Invalid input"
    ):
        yahoo(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))


def test_stooq_no_data_for_an_empty_range_parses_to_zero_rows(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=replay_server.file("stooq_no_data.txt")))
    replay_server.add(
        STOOQ, Reply(body=replay_server.file("stooq_spx.csv")), query={"d1": "20151128"}
    )
    [p] = stooq(replay_server).fetch(D(2015, 12, 26), D(2015, 12, 28))  # weekend: no trading
    assert p.content == b"No data" and p.request["params"]["d1"] == "20151226"
    df = parse_payload(p)
    assert list(df.columns) == schema.PRICE_COLUMNS and df.empty
    assert [r.query["d1"] for r in replay_server.requests] == ["20151226", "20151128"]


def test_stooq_unknown_symbol_is_a_clear_error(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=replay_server.file("stooq_no_data.txt")))
    with pytest.raises(
        SourceError, match=r"no data for symbol '\^spx' from 2015-11-28 to 2015-12-28"
    ):
        stooq(replay_server).fetch(D(2015, 12, 26), D(2015, 12, 28))


def test_stooq_hits_limit_is_a_clear_error(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=replay_server.file("stooq_hits_limit.txt")))
    with pytest.raises(SourceError, match=r"series 'SP500'.*Exceeded the daily hits limit"):
        stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))
    assert len(replay_server.requests) == 1


def test_stooq_html_answer_is_a_clear_error(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=b"<html><body>Captcha</body></html>"))
    with pytest.raises(SourceError, match="not Stooq's CSV: '<html><body>Captcha"):
        stooq(replay_server).fetch(D(2015, 12, 14), D(2015, 12, 28))


# --- politeness


def test_user_agent_is_sent(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=replay_server.file("stooq_spx.csv")))
    stooq(replay_server, client(user_agent="acme-forecasts/2.0 (ops@acme.test)")).fetch(
        D(2015, 12, 14), D(2015, 12, 28)
    )
    assert replay_server.requests[0].headers["user-agent"] == "acme-forecasts/2.0 (ops@acme.test)"


def test_rate_limit_spaces_requests_across_threads(replay_server: ReplayServer) -> None:
    replay_server.add(STOOQ, Reply(body=replay_server.file("stooq_spx.csv")))
    limiter = RateLimiter()
    shared = HttpClient(http(rate_limit_per_s=20.0), rate_limiter=limiter)
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=stooq(replay_server, shared).fetch, args=(D(2015, 12, 14), D(2015, 12, 28))
        )  # fmt: skip
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    arrivals = sorted(r.at for r in replay_server.requests)
    assert len(arrivals) == 4
    # all four went through the shared limiter: it handed out four slots 50 ms apart (the
    # exact spacing of the slots is test_rate_limiter_reserves_slots'; arrival times at the
    # server also carry thread and socket jitter, so only their total span is checked here)
    (next_slot,) = limiter._next.values()
    assert next_slot >= started + 4 * 0.05
    assert arrivals[-1] - arrivals[0] >= 3 * 0.05 - 0.05


def test_rate_limiter_reserves_slots() -> None:
    now = [100.0]
    waits: list[float] = []
    limiter = RateLimiter(clock=lambda: now[0], sleep=waits.append)
    for _ in range(3):
        limiter.wait("a.example", 0.5)
    limiter.wait("b.example", 0.5)
    assert waits == [0.5, 1.0]


# --- secrets


def test_api_key_is_sent_but_never_shown(
    replay_server: ReplayServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        http=http(),
        credentials={"open_meteo": SecretStr(SECRET)},
        weather_source=SourceSpec(
            kind="open_meteo",
            options={
                "credential": "OPEN_METEO",
                "archive_url": replay_server.url(ARCHIVE),
                "forecast_url": replay_server.url(FORECAST),
            },
        ),
    )
    src = weather_source(settings, SEATTLE)
    replay_server.add(
        ARCHIVE, Reply(500), Reply(body=replay_server.file("open_meteo_archive_seattle.json"))
    )
    with caplog.at_level(logging.DEBUG):
        [p] = src.fetch(D(2015, 12, 10), D(2015, 12, 19))
    assert [r.query["apikey"] for r in replay_server.requests] == [SECRET, SECRET]
    assert p.request["params"]["apikey"] == "***"
    assert SECRET not in json.dumps(p.request) and SECRET not in repr(p) + repr(src)
    raw = land_raw(str(tmp_path), p)
    assert raw.endswith(".json") and Path(raw).read_bytes() == p.content
    assert SECRET not in Path(raw + ".meta.json").read_text()
    assert "attempt 1 of 3 failed (HTTP 500" in caplog.text and SECRET not in caplog.text

    # errors: retried to the end, and a 4xx whose body echoes the request URL
    replay_server.add(ARCHIVE, Reply(503))
    with pytest.raises(SourceError) as info:
        src.fetch(D(2015, 12, 10), D(2015, 12, 19))
    assert "apikey=***" in str(info.value) and SECRET not in str(info.value)
    echo = f'{{"error":true,"reason":"bad key {SECRET}"}}'.encode()
    replay_server.add(ARCHIVE, Reply(400, echo))
    with pytest.raises(HttpStatusError) as info:
        src.fetch(D(2015, 12, 10), D(2015, 12, 19))
    assert "bad key ***" in str(info.value) and SECRET not in str(info.value)
    assert SECRET not in caplog.text


def test_redact_url() -> None:
    url = "https://user:pw@x.test/a?s=%5Espx&apikey=abc&Token=t&key=k&d1=20240101"
    assert (
        redact_url(url)
        == "https://user:***@x.test/a?s=%5Espx&apikey=***&Token=***&key=***&d1=20240101"
    )


def test_ingest_window_filters_http_rows(replay_server: ReplayServer) -> None:
    replay_server.add(f"{YAHOO}/MSFT", Reply(body=replay_server.file("yahoo_chart_msft.json")))
    [p] = yahoo(replay_server).fetch(D(2015, 12, 15), D(2015, 12, 17))
    df = filter_dates(parse_payload(p), D(2015, 12, 15), D(2015, 12, 17))
    assert df["date"].dt.day.tolist() == [15, 16, 17]
