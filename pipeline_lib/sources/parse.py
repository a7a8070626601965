"""Turn a payload's bytes into the curated schema, with errors a person can act on.

Only the shape is checked here (columns, types, dates). Business rules (negative prices,
duplicate days, high < low) are the validation stage's job, so such rows are kept.
Dates come out as ``datetime64[ns]`` at midnight, values as ``float64``.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
from collections.abc import Mapping

import pandas as pd
import pyarrow.parquet as pq

from pipeline_lib import schema
from pipeline_lib.sources.base import PARQUET, ParseError, Payload
from pipeline_lib.sources.http import JSON
from pipeline_lib.sources.open_meteo import read_open_meteo_json
from pipeline_lib.sources.stooq import COLUMNS as STOOQ_COLUMNS
from pipeline_lib.sources.stooq import is_no_data
from pipeline_lib.sources.yahoo import read_yahoo_chart_json

# JSON answers of HTTP sources, by payload.source: each returns untyped curated columns.
_JSON_READERS = {"open_meteo": read_open_meteo_json, "yahoo_chart": read_yahoo_chart_json}

# Other columns of the schema are optional: null when absent (temp_mean is derived).
_PRICE_REQUIRED = [schema.DATE, schema.TARGET]
_WEATHER_REQUIRED = [schema.DATE, "temp_max", "temp_min", "precipitation", "wind_speed"]
_MAX_SHOWN = 5
IGNORED_COLUMNS = "ignored_columns"  # attrs key: the payload's columns not in the schema


def _fail(payload: Payload, problem: str) -> ParseError:
    return ParseError(f"{payload.describe()}: {problem}")


def _read_raw(payload: Payload) -> pd.DataFrame:
    """The file as a frame of untyped columns; header names as written."""
    if not payload.content.strip():
        raise _fail(payload, "the file is empty")
    if payload.media_type == JSON:
        reader = _JSON_READERS.get(payload.source)
        if reader is None:
            raise _fail(payload, f"no JSON reader for source '{payload.source}'")
        return reader(payload)
    if payload.source == "stooq" and is_no_data(payload.content):
        return pd.DataFrame(columns=STOOQ_COLUMNS, dtype=str)  # Stooq's "No data": zero rows
    if payload.media_type == PARQUET or payload.name.lower().endswith(".parquet"):
        try:
            # ignore_metadata: a saved pandas index (e.g. dates) comes back as a plain column
            return pq.read_table(io.BytesIO(payload.content)).to_pandas(ignore_metadata=True)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise _fail(payload, f"not a readable Parquet file ({exc})") from None
    try:
        text = payload.content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        data = exc.object
        snippet = data[max(exc.start - 10, 0) : exc.end + 10]
        raise _fail(
            payload,
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(near {snippet!r}); save the file as UTF-8",
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True, index_col=False)
    except pd.errors.ParserWarning:
        raise _fail(payload, "some rows have more fields than the header line") from None
    except pd.errors.EmptyDataError:
        raise _fail(payload, "the file is empty (no header line)") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise _fail(payload, f"not a well-formed CSV file: {exc}") from None


def _rename(raw: pd.DataFrame, columns: Mapping[str, str] | None, payload: Payload) -> pd.DataFrame:
    """Lower-case, strip and map the file's column names to ours."""
    mapping = {str(k).strip().lower(): v for k, v in (columns or {}).items()}
    names = [str(c).strip().lower() for c in raw.columns]
    names = [mapping.get(n, n) for n in names]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail(payload, f"column names repeat after matching ignoring case: {dupes}")
    out = raw.copy()
    out.columns = names
    return out


def _check_columns(df: pd.DataFrame, required: list[str], payload: Payload) -> None:
    for col in required:
        if col not in df.columns:
            found = ", ".join(map(str, df.columns))
            hint = ""
            if len(df.columns) == 1 and any(d in found for d in ";\t|"):
                hint = "; the file seems to use another delimiter than ','"
            raise _fail(payload, f"missing required column '{col}' (found: {found}){hint}")


def _offending(values: pd.Series, bad: pd.Series) -> str:
    rows = bad[bad].index[:_MAX_SHOWN]
    count = int(bad.sum())
    shown = ", ".join("(empty)" if pd.isna(values[i]) else repr(str(values[i])) for i in rows)
    more = f" and {count - len(rows)} more" if count > len(rows) else ""
    where = ", ".join(str(i + 1) for i in rows) + more
    return f"at rows {where} (1 = first data row): {shown}"


def _to_float(df: pd.DataFrame, col: str, payload: Payload) -> pd.Series:
    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    text = raw.astype("string").str.strip()
    text = text.mask(text == "", None)
    out = pd.to_numeric(text, errors="coerce")
    bad = (text.notna() & out.isna()).fillna(False).astype(bool)
    if bad.any():
        raise _fail(payload, f"column '{col}' has non-numeric values {_offending(raw, bad)}")
    return out.astype("float64")


def _to_dates(df: pd.DataFrame, payload: Payload) -> pd.Series:
    raw = df[schema.DATE]
    if pd.api.types.is_datetime64_any_dtype(raw):
        out = raw
    else:
        values = raw.map(lambda v: v.isoformat() if isinstance(v, dt.date) else v)
        text = values.astype("string").str.strip()
        try:
            out = pd.to_datetime(text, errors="coerce")
        except (ValueError, TypeError) as exc:
            raise _fail(payload, f"column 'date' could not be read as dates ({exc})") from None
        bad = (out.isna()).fillna(True).astype(bool)
        if bad.any():
            raise _fail(payload, f"column 'date' has unparsable dates {_offending(raw, bad)}")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)  # keep the calendar day as written
    if out.isna().any():
        raise _fail(payload, f"column 'date' has empty dates {_offending(raw, out.isna())}")
    out_of_range = ((out < pd.Timestamp.min) | (out > pd.Timestamp.max)).astype(bool)
    if out_of_range.any():
        raise _fail(
            payload,
            f"column 'date' has impossible dates (outside {pd.Timestamp.min.date()} to "
            f"{pd.Timestamp.max.date()}) {_offending(raw, out_of_range)}",
        )
    return out.dt.normalize().astype("datetime64[ns]")


def parse_payload(payload: Payload, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The payload's rows in the curated schema of its data set.

    prices -> ``schema.PRICE_COLUMNS`` (``series_id`` = payload.key; ``date`` and ``close``
    required; ``open``/``high``/``low``/``volume`` null when absent). weather ->
    ``schema.WEATHER_COLUMNS`` (``location`` = payload.key; ``temp_mean`` derived as
    (temp_max + temp_min) / 2 when absent). Column names match ignoring case; ``columns``
    maps the file's names to ours (default: ``payload.request["columns"]`` if recorded).
    Extra columns are dropped and listed in ``attrs["ignored_columns"]``.
    Raises :class:`ParseError` naming the file and the problem.
    """
    if payload.dataset == schema.PRICES:
        required = _PRICE_REQUIRED
        key_col, out_cols = schema.SERIES_ID, schema.PRICE_COLUMNS
    elif payload.dataset == schema.WEATHER:
        required = _WEATHER_REQUIRED
        key_col, out_cols = schema.LOCATION, schema.WEATHER_COLUMNS
    else:
        raise _fail(payload, f"unknown data set '{payload.dataset}' (expected prices or weather)")
    if columns is None:
        columns = payload.request.get("columns") or None
    df = _rename(_read_raw(payload), columns, payload)
    _check_columns(df, required, payload)
    out = pd.DataFrame(index=df.index)
    out[key_col] = pd.Series([payload.key] * len(df), index=df.index, dtype="str")
    out[schema.DATE] = _to_dates(df, payload)
    for col in [c for c in out_cols if c not in (key_col, schema.DATE)]:
        if col in df.columns:
            out[col] = _to_float(df, col, payload)
        elif col == "temp_mean":
            out[col] = (out["temp_max"] + out["temp_min"]) / 2
        else:
            out[col] = pd.Series(float("nan"), index=df.index, dtype="float64")
    out = out[out_cols].reset_index(drop=True)
    out.attrs[IGNORED_COLUMNS] = [str(c) for c in df.columns if c not in out_cols]
    return out


def filter_dates(df: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """A copy of the rows dated in ``[start, end]`` (inclusive)."""
    dates = pd.to_datetime(df[schema.DATE])
    keep = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
    return df.loc[keep].reset_index(drop=True)
