"""Yahoo Finance's chart API, daily bars as JSON (kind ``yahoo_chart``; prices only).

Asks ``https://query1.finance.yahoo.com/v8/finance/chart/<symbol>?period1=<epoch>&period2=
<epoch>&interval=1d`` and lands the JSON unchanged. The parser takes ``chart.result[0]``:
``timestamp`` and ``indicators.quote[0]`` ``open``/``high``/``low``/``close``/``volume``
(``close`` is split-adjusted, not dividend-adjusted), each bar dated in the exchange's time
zone (``meta.exchangeTimezoneName``, else ``meta.gmtoffset``). The range asked is widened by a
day on each side so no exchange's time zone loses a bar; ingest keeps only the dates asked.

Options (``series.source.options``):

- ``symbol``: Yahoo's symbol (default: the series id), e.g. ``MSFT``, ``^GSPC``, ``CL=F``.
- ``base_url``: another endpoint (default ``https://query1.finance.yahoo.com/v8/finance/chart/``).

A ``chart.error`` in the answer (an unknown symbol: HTTP 404 "No data found, symbol may be
delisted") is a :class:`SourceError` with Yahoo's description.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.ingest.sources.base import ParseError, SourceError
from pipeline_lib.ingest.sources.http import HttpClient, HttpStatusError
from pipeline_lib.ingest.sources.responses import json_body
from pipeline_lib.store.raw import JSON, Payload

BASE_URL = "https://query1.finance.yahoo.com/v8/finance/chart/"
_VALUES = ["open", "high", "low", "close", "volume"]


def _epoch(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


def chart_error(data: Any) -> str | None:
    """Yahoo's ``chart.error`` as ``"code: description"``, or None when there is none."""
    chart = data.get("chart") if isinstance(data, dict) else None
    error = chart.get("error") if isinstance(chart, dict) else None
    if not error:
        return None
    if isinstance(error, dict):
        code, description = error.get("code", ""), error.get("description", "")
        return ": ".join(str(p) for p in (code, description) if p) or json.dumps(error)
    return str(error)


class YahooChartSource:
    """Daily prices of one Yahoo Finance symbol (see the module docstring)."""

    name = "yahoo_chart"
    dataset = schema.PRICES

    def __init__(
        self,
        key: str,
        symbol: str | None = None,
        client: HttpClient | None = None,
        *,
        base_url: str | None = None,
    ) -> None:
        self.key = key
        self.symbol = symbol or key
        self.client = client or HttpClient()
        self.base_url = base_url or BASE_URL

    def __repr__(self) -> str:
        return f"YahooChartSource({self.key!r}, symbol={self.symbol!r})"

    def fetch(self, start: dt.date, end: dt.date) -> list[Payload]:
        """One payload: the chart JSON for ``[start - 1 day, end + 1 day]``."""
        url = self.base_url.rstrip("/") + "/" + quote(self.symbol, safe="")
        params = {
            "period1": _epoch(start - dt.timedelta(days=1)),
            "period2": _epoch(end + dt.timedelta(days=2)),
            "interval": "1d",
        }
        context = (
            f"yahoo_chart prices for series '{self.key}' (symbol {self.symbol}), {start} to {end}"
        )
        try:
            response = self.client.get(url, params, context=context)
        except HttpStatusError as exc:
            try:
                error = chart_error(json.loads(exc.body))
            except ValueError:
                error = None
            if error is None:
                raise
            raise SourceError(f"{context}: Yahoo answered HTTP {exc.status}: {error}") from None
        try:
            error = chart_error(json.loads(response.content))
        except ValueError:
            error = None  # not JSON: landed as is, the parser says what is wrong
        if error is not None:
            raise SourceError(f"{context}: Yahoo answered with an error: {error}")
        name = f"yahoo_chart-{self.symbol}-{start}-{end}.json"
        return [response.payload(self, JSON, name, start=start.isoformat(), end=end.isoformat())]


def _time_zone(meta: dict[str, Any]) -> dt.tzinfo:
    name = meta.get("exchangeTimezoneName")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    offset = meta.get("gmtoffset")
    if isinstance(offset, int | float):
        return dt.timezone(dt.timedelta(seconds=offset))
    return dt.UTC


def read_yahoo_chart_json(payload: Payload) -> pd.DataFrame:
    """A Yahoo chart answer as a frame of curated column names (values untyped).

    Raises :class:`ParseError` for invalid JSON, a ``chart.error``, a missing result or
    quote, or arrays of unequal length. A result without ``timestamp`` has zero rows.
    """
    data = json_body(payload)

    def fail(problem: str) -> ParseError:
        return ParseError(f"{payload.describe()}: {problem}")

    error = chart_error(data)
    if error is not None:
        raise fail(f"Yahoo answered with an error: {error}")
    try:
        result = data["chart"]["result"][0]
    except (KeyError, IndexError, TypeError):
        raise fail("no 'chart.result[0]' in the response") from None
    if not isinstance(result, dict):
        raise fail("'chart.result[0]' is not an object")
    meta = result.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    stamps = result.get("timestamp") or []
    if not isinstance(stamps, list):
        raise fail("'timestamp' is not an array")
    try:
        quote_ = result["indicators"]["quote"][0]
    except (KeyError, IndexError, TypeError):
        quote_ = None
    if not isinstance(quote_, dict):
        if stamps:
            raise fail("no 'indicators.quote[0]' in the response")
        quote_ = {}
    columns: dict[str, list[Any]] = {}
    for name in _VALUES:
        values = quote_.get(name)
        if values is None:
            if name == "close" and stamps:
                raise fail("'indicators.quote[0]' has no 'close' array")
            values = [None] * len(stamps)
        if not isinstance(values, list) or len(values) != len(stamps):
            size = len(values) if isinstance(values, list) else type(values).__name__
            raise fail(f"'quote[0].{name}' has {size} values but 'timestamp' has {len(stamps)}")
        columns[name] = values
    try:
        when = pd.to_datetime(pd.Series(stamps, dtype="float64"), unit="s", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise fail(f"'timestamp' holds values that are not epoch seconds ({exc})") from None
    dates = when.dt.tz_convert(_time_zone(meta)).dt.strftime("%Y-%m-%d")
    frame = {schema.DATE: dates.astype("object").tolist(), **columns}
    return pd.DataFrame({k: pd.Series(v, dtype="object") for k, v in frame.items()})
