"""How a parse problem names what is wrong: the payload, and the first rows at fault with
their values as written."""

from __future__ import annotations

import pandas as pd

from pipeline_lib.ingest.sources.base import ParseError
from pipeline_lib.store.raw import Payload

MAX_SHOWN = 5  # rows (or lines) named in a message; the others are counted


def fail(payload: Payload, problem: str) -> ParseError:
    return ParseError(f"{payload.describe()}: {problem}")


def offending(values: pd.Series, bad: pd.Series) -> str:
    rows = bad[bad].index[:MAX_SHOWN]
    count = int(bad.sum())
    shown = ", ".join("(empty)" if pd.isna(values[i]) else repr(str(values[i])) for i in rows)
    more = f" and {count - len(rows)} more" if count > len(rows) else ""
    where = ", ".join(str(i + 1) for i in rows) + more
    return f"at rows {where} (1 = first data row): {shown}"
