"""The bundled sample data (real daily series, see sample_data/PROVENANCE.md) as a source."""

from __future__ import annotations

import datetime as dt
from importlib import resources

from pipeline_lib import schema
from pipeline_lib.ingest.sources.base import SourceError, utc_now
from pipeline_lib.store.raw import CSV, Payload

_PREFIX = {schema.PRICES: "prices_", schema.WEATHER: "weather_"}


def available(dataset: str) -> list[str]:
    """The symbols (prices) or locations (weather) bundled for ``dataset``."""
    prefix = _PREFIX[dataset]
    folder = resources.files("pipeline_lib") / "sample_data"
    names = [p.name for p in folder.iterdir() if p.name.startswith(prefix)]
    return sorted(n[len(prefix) : -len(".csv")] for n in names if n.endswith(".csv"))


class SampleSource:
    """Rows of a bundled CSV file, copied verbatim (header plus the lines in range).

    ``symbol`` names the file: ``prices_<symbol>.csv`` or ``weather_<symbol>.csv``.
    ``key`` is the series id or location name the rows are stored under.
    """

    name = "sample"

    def __init__(self, dataset: str, key: str, symbol: str | None = None) -> None:
        if dataset not in _PREFIX:
            raise SourceError(f"unknown data set '{dataset}' (expected prices or weather)")
        self.dataset = dataset
        self.key = key
        self.symbol = symbol or key
        if self.symbol not in available(dataset):
            what = "symbol" if dataset == schema.PRICES else "location"
            raise SourceError(
                f"no bundled sample {dataset} for {what} '{self.symbol}'; "
                f"available: {', '.join(available(dataset))}"
            )
        self.file_name = f"{_PREFIX[dataset]}{self.symbol}.csv"

    def __repr__(self) -> str:
        return f"SampleSource({self.dataset!r}, {self.key!r}, symbol={self.symbol!r})"

    def fetch(self, start: dt.date, end: dt.date) -> list[Payload]:
        """One payload with the rows dated in ``[start, end]``, or none if there are none."""
        data = (resources.files("pipeline_lib") / "sample_data" / self.file_name).read_bytes()
        lines = data.splitlines(keepends=True)
        lo, hi = start.isoformat(), end.isoformat()
        rows = [ln for ln in lines[1:] if lo <= ln.split(b",", 1)[0].decode("ascii") <= hi]
        if not rows:
            return []
        request = {"symbol": self.symbol, "start": lo, "end": hi, "file": self.file_name}
        return [
            Payload(
                source=self.name,
                dataset=self.dataset,
                key=self.key,
                request=request,
                fetched_at=utc_now(),
                content=lines[0] + b"".join(rows),
                media_type=CSV,
                name=self.file_name,
            )
        ]
