"""Turn pandas and numpy values into the plain Python values database drivers expect."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT and pandas' NA."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return False


def to_date(value: Any) -> dt.date | None:
    """A ``datetime.date`` from a date, datetime, Timestamp, datetime64 or ISO string."""
    if is_missing(value):
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return pd.Timestamp(value).date()


def to_str(value: Any) -> str | None:
    if is_missing(value):
        return None
    if isinstance(value, PurePath):
        return str(value)
    return str(value.item() if isinstance(value, np.generic) else value)


def to_json(value: Any) -> str | None:
    """JSON text from a mapping or list (strings are taken as JSON text already)."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()
    return str(value)


def to_datetime_utc(value: Any) -> dt.datetime | None:
    """A tz-aware UTC datetime; naive values are taken as UTC."""
    if is_missing(value):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


Converter = Callable[[Any], Any]
