"""What every source returns (a :class:`Payload`) and the interface it implements."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pipeline_lib.errors import PipelineError

CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


class SourceError(PipelineError):  # an Exception as before; printed by the CLI
    """A source could not deliver data (unknown symbol, missing path, unreachable service)."""


class ParseError(SourceError):
    """A payload's bytes could not be turned into the curated schema."""


@dataclass(frozen=True)
class Payload:
    """Bytes exactly as fetched from a source, with what was asked and when.

    source: the source kind ("sample", "file"); dataset: "prices" or "weather";
    key: the series id or location name; request: what was asked (JSON-able: dates, path,
    column mapping); fetched_at: tz-aware UTC time of the fetch; content: the bytes,
    unchanged; media_type: "text/csv" or "application/vnd.apache.parquet";
    name: the original file name.
    """

    source: str
    dataset: str
    key: str
    request: dict[str, Any]
    fetched_at: dt.datetime
    content: bytes = field(repr=False)
    media_type: str
    name: str

    def __post_init__(self) -> None:
        if self.fetched_at.tzinfo is None:
            raise ValueError("Payload.fetched_at must be time-zone aware (UTC)")

    @functools.cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of ``content``, computed once per payload."""
        return hashlib.sha256(self.content).hexdigest()

    def describe(self) -> str:
        """A short human name, e.g. ``prices file 'x.csv' (series SP500, source file)``."""
        what = "series" if self.dataset == "prices" else "location"
        return f"{self.dataset} file '{self.name}' ({what} {self.key}, source {self.source})"


@runtime_checkable
class Source(Protocol):
    """A place data comes from. ``fetch`` returns payloads covering ``[start, end]``.

    It may return an empty list when there is nothing for that range.
    """

    name: str
    dataset: str
    key: str

    def fetch(self, start: dt.date, end: dt.date) -> list[Payload]: ...


def utc_now() -> dt.datetime:
    """The current time, tz-aware UTC."""
    return dt.datetime.now(dt.UTC)
