"""What every source returns (a :class:`Payload`, defined with the raw store that lands it:
:mod:`pipeline_lib.store.raw`) and the interface it implements."""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

from pipeline_lib.errors import PipelineError
from pipeline_lib.store.raw import Payload


class SourceError(PipelineError):  # an Exception as before; printed by the CLI
    """A source could not deliver data (unknown symbol, missing path, unreachable service)."""


class ParseError(SourceError):
    """A payload's bytes could not be turned into the curated schema."""


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
