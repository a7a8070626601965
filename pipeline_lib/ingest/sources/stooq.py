"""Stooq daily prices as CSV (kind ``stooq``; prices only).

Asks ``https://stooq.com/q/d/l/?s=<symbol>&d1=YYYYMMDD&d2=YYYYMMDD&i=d`` and lands the CSV
(``Date,Open,High,Low,Close,Volume``) unchanged; the CSV parser maps it to the price schema.
Indices have no volume column; it is then null.

Options (``series.source.options``):

- ``symbol``: Stooq's symbol (default: the series id), e.g. ``^spx`` (S&P 500), ``msft.us``,
  ``cl.f`` (WTI crude futures), ``eurusd``.
- ``base_url``: another endpoint (default ``https://stooq.com/q/d/l/``).

Stooq answers ``No data`` with HTTP 200 both for an unknown symbol and for a range without
trading days (a weekend, a holiday). The source then asks once more for the
``probe_days`` (30) days up to the end date: if those have data, the symbol is fine and the
``No data`` answer is landed and parses to zero rows; if not, it raises :class:`SourceError`
naming the symbol. A range of 30 days or more that has no data is an error straight away.
``Exceeded the daily hits limit`` and any other answer that is not the CSV are errors too.
"""

from __future__ import annotations

import datetime as dt

from pipeline_lib import schema
from pipeline_lib.ingest.sources.base import SourceError
from pipeline_lib.ingest.sources.http import HttpClient
from pipeline_lib.ingest.sources.responses import HttpResponse
from pipeline_lib.store.raw import CSV, Payload

BASE_URL = "https://stooq.com/q/d/l/"
COLUMNS = ["Date", "Open", "High", "Low", "Close", "Volume"]
_HITS_LIMIT = b"exceeded the daily hits limit"


def is_no_data(content: bytes) -> bool:
    """Whether a Stooq answer is its plain ``No data`` body."""
    return content.strip().lower() == b"no data"


class StooqSource:
    """Daily prices of one Stooq symbol (see the module docstring)."""

    name = "stooq"
    dataset = schema.PRICES

    def __init__(
        self,
        key: str,
        symbol: str | None = None,
        client: HttpClient | None = None,
        *,
        base_url: str | None = None,
        probe_days: int = 30,
    ) -> None:
        self.key = key
        self.symbol = symbol or key
        self.client = client or HttpClient()
        self.base_url = base_url or BASE_URL
        self.probe_days = probe_days

    def __repr__(self) -> str:
        return f"StooqSource({self.key!r}, symbol={self.symbol!r})"

    def _context(self, start: dt.date, end: dt.date) -> str:
        return f"stooq prices for series '{self.key}' (symbol {self.symbol}), {start} to {end}"

    def _get(self, start: dt.date, end: dt.date) -> HttpResponse:
        params = {"s": self.symbol, "d1": f"{start:%Y%m%d}", "d2": f"{end:%Y%m%d}", "i": "d"}
        context = self._context(start, end)
        response = self.client.get(self.base_url, params, context=context)
        body = response.content.strip()
        if body.lower().startswith(_HITS_LIMIT):
            raise SourceError(
                f"{context}: Stooq refused: 'Exceeded the daily hits limit' (try again "
                "tomorrow, or ask for fewer series or longer ranges per request)"
            )
        if not is_no_data(body) and not body.startswith(b"Date,"):
            snippet = body[:200].decode("utf-8", "replace")
            raise SourceError(f"{context}: the answer is not Stooq's CSV: {snippet!r}")
        return response

    def fetch(self, start: dt.date, end: dt.date) -> list[Payload]:
        """One payload: the CSV for ``[start, end]`` (``No data`` when no day traded)."""
        response = self._get(start, end)
        if is_no_data(response.content):
            probe_start = end - dt.timedelta(days=self.probe_days)
            if probe_start >= start or is_no_data(self._get(probe_start, end).content):
                first = min(start, probe_start)
                raise SourceError(
                    f"{self._context(start, end)}: Stooq has no data for symbol "
                    f"'{self.symbol}' from {first} to {end}; is the symbol right? (Stooq "
                    "spells them e.g. ^spx, msft.us, cl.f)"
                )
        name = f"stooq-{self.symbol}-{start}-{end}.csv"
        return [response.payload(self, CSV, name, start=start.isoformat(), end=end.isoformat())]
