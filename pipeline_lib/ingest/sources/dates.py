"""The date column of a payload, typed: ISO 8601 text (``YYYY-MM-DD``, optionally with a time
and a UTC offset; the calendar day is kept as written) unless the source declares a
``date_format`` (a strftime pattern such as ``"%d/%m/%Y"``): guessing is how ``01/02/2016``
became 2 January. A date that is not ISO 8601 is refused with the formats it could be (day
first, month first), an ambiguous one named as such; dates come out at midnight, as
``datetime64[ns]``.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.ingest.sources.problems import fail, offending
from pipeline_lib.store.raw import Payload

# ISO 8601 dates, optionally with a time and an offset: the first 10 characters are the day.
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
# Numeric day/month/year (or month/day/year) dates, the ones that can be read two ways.
_DMY = re.compile(r"(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?![\d/.\-])")


def _candidates(text: pd.Series) -> tuple[str, str]:
    """The day-first and month-first patterns the column's first numeric date suggests."""
    for value in text.dropna():
        found = _DMY.match(value)
        if found:
            sep, year = found[2], "%Y" if len(found[4]) == 4 else "%y"
            return f"%d{sep}%m{sep}{year}", f"%m{sep}%d{sep}{year}"
    return "%d/%m/%Y", "%m/%d/%Y"


def _ambiguous(value: str) -> bool:
    """Whether a numeric date reads as two different days, day first and month first."""
    found = _DMY.match(value)
    if found is None:
        return False
    first, second = int(found[1]), int(found[3])
    return first != second and 1 <= first <= 12 and 1 <= second <= 12


def _iso_dates(text: pd.Series, raw: pd.Series, payload: Payload) -> pd.Series:
    """ISO 8601 dates (a time and an offset allowed), at midnight of the day as written."""
    non_iso = (~text.str.fullmatch(_ISO_DATE.pattern)).fillna(False).astype(bool)
    if non_iso.any():
        day_first, month_first = _candidates(text[non_iso])
        formats = f'date_format = "{day_first}" (day first) or "{month_first}" (month first)'
        ambiguous = (non_iso & text.map(_ambiguous, na_action="ignore")).fillna(False)
        if ambiguous.any():
            raise fail(
                payload,
                "column 'date' has ambiguous dates (not ISO 8601 YYYY-MM-DD; day first and "
                f"month first give different days) {offending(raw, ambiguous.astype(bool))}; "
                f"declare the format in the source's options: {formats}",
            )
        raise fail(
            payload,
            f"column 'date' has dates not in ISO 8601 form (YYYY-MM-DD) {offending(raw, non_iso)}"
            f"; write them as YYYY-MM-DD or declare the format in the source's options, e.g. "
            f"{formats}",
        )
    # utc: the offsets may differ row to row; only validity is read here, the day from the text
    whole = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    invalid = (text.notna() & whole.isna()).astype(bool)
    # a real day that pandas cannot hold (pandas 2 coerces out-of-bounds days to NaT)
    days = text.str.slice(0, 10).map(_beyond_pandas, na_action="ignore")
    beyond = days.fillna(False).astype(bool)
    if (invalid & beyond).any():
        raise fail(payload, _impossible(raw, invalid & beyond))
    if invalid.any():
        raise fail(
            payload,
            f"column 'date' has unparsable dates {offending(raw, invalid)}; they have the "
            "ISO 8601 form but name no real day or time",
        )
    return pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d")


def _declared_dates(
    text: pd.Series, raw: pd.Series, date_format: str, payload: Payload
) -> pd.Series:
    """Dates read with the source's ``date_format``; every value must match it."""

    def read(value: str) -> dt.datetime | None:
        try:
            # the calendar day as written, whatever the offset
            return dt.datetime.strptime(value, date_format).replace(tzinfo=None)
        except ValueError:
            return None

    parsed = {value: read(value) for value in text.dropna().unique()}
    days = [None if pd.isna(v) else parsed[v] for v in text]
    bad = pd.Series([d is None for d in days], index=text.index) & text.notna()
    if bad.any():
        raise fail(
            payload,
            f"column 'date' has dates that do not match the source's date_format "
            f'"{date_format}" {offending(raw, bad.astype(bool))}; fix those rows or the '
            "date_format option",
        )
    return pd.Series(days, index=text.index, dtype="datetime64[us]")


def to_dates(df: pd.DataFrame, payload: Payload, date_format: str | None = None) -> pd.Series:
    """The date column, typed: ISO 8601 text unless ``date_format`` is declared."""
    raw = df[schema.DATE]
    if pd.api.types.is_datetime64_any_dtype(raw):
        out = raw
    else:
        values = raw.map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
        text = values.astype("string").str.strip()
        text = text.mask(text == "", None)
        if text.isna().any():
            raise fail(payload, f"column 'date' has empty dates {offending(raw, text.isna())}")
        if date_format:
            out = _declared_dates(text, raw, date_format, payload)
        else:
            out = _iso_dates(text, raw, payload)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)  # keep the calendar day as written
    if out.isna().any():
        raise fail(payload, f"column 'date' has empty dates {offending(raw, out.isna())}")
    out_of_range = ((out < pd.Timestamp.min) | (out > pd.Timestamp.max)).astype(bool)
    if out_of_range.any():
        raise fail(payload, _impossible(raw, out_of_range))
    return out.dt.normalize().astype("datetime64[ns]")


def _beyond_pandas(text: str) -> bool:
    """Whether ``text`` is a real day outside the days a pandas timestamp can hold."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return False
    return not pd.Timestamp.min.date() <= day <= pd.Timestamp.max.date()


def _impossible(raw: pd.Series, rows: pd.Series) -> str:
    return (
        f"column 'date' has impossible dates (outside {pd.Timestamp.min.date()} to "
        f"{pd.Timestamp.max.date()}) {offending(raw, rows)}"
    )
