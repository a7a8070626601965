"""Turn a payload's bytes into the curated schema, with errors a person can act on.

Only the shape is checked here (columns, field counts, types, dates). Business rules
(negative prices, duplicate days, high < low) are the validation stage's job, so such rows are
kept. Dates come out as ``datetime64[ns]`` at midnight, values as ``float64``.

The date column is read by :mod:`pipeline_lib.ingest.sources.dates`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
from collections.abc import Mapping

import pandas as pd
import pyarrow.parquet as pq

from pipeline_lib import schema
from pipeline_lib.ingest.sources.dates import to_dates
from pipeline_lib.ingest.sources.open_meteo import read_open_meteo_json
from pipeline_lib.ingest.sources.problems import MAX_SHOWN, fail, offending
from pipeline_lib.ingest.sources.stooq import COLUMNS as STOOQ_COLUMNS
from pipeline_lib.ingest.sources.stooq import is_no_data
from pipeline_lib.ingest.sources.yahoo import read_yahoo_chart_json
from pipeline_lib.store.raw import JSON, PARQUET, Payload

# JSON answers of HTTP sources, by payload.source: each returns untyped curated columns.
_JSON_READERS = {"open_meteo": read_open_meteo_json, "yahoo_chart": read_yahoo_chart_json}

# Other columns of the schema are optional: null when absent (temp_mean is derived).
_PRICE_REQUIRED = [schema.DATE, schema.TARGET]
_WEATHER_REQUIRED = [schema.DATE, "temp_max", "temp_min", "precipitation", "wind_speed"]
IGNORED_COLUMNS = "ignored_columns"  # attrs key: the payload's columns not in the schema
NO_ROWS = "no_rows"  # attrs key: why a file gave no rows (e.g. "header only"), for the run's notes


def _read_raw(payload: Payload) -> pd.DataFrame:
    """The file as a frame of untyped columns; header names as written."""
    if not payload.content.strip():
        raise fail(payload, "the file is empty")
    if payload.media_type == JSON:
        reader = _JSON_READERS.get(payload.source)
        if reader is None:
            raise fail(payload, f"no JSON reader for source '{payload.source}'")
        return reader(payload)
    if payload.source == "stooq" and is_no_data(payload.content):
        return pd.DataFrame(columns=STOOQ_COLUMNS, dtype=str)  # Stooq's "No data": zero rows
    if payload.media_type == PARQUET or payload.name.lower().endswith(".parquet"):
        try:
            # ignore_metadata: a saved pandas index (e.g. dates) comes back as a plain column
            return pq.read_table(io.BytesIO(payload.content)).to_pandas(ignore_metadata=True)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise fail(payload, f"not a readable Parquet file ({exc})") from None
    try:
        text = payload.content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        data = exc.object
        snippet = data[max(exc.start - 10, 0) : exc.end + 10]
        raise fail(
            payload,
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(near {snippet!r}); save the file as UTF-8",
        ) from None
    _check_field_counts(text, payload)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True, index_col=False)
    except pd.errors.ParserWarning as exc:  # a backstop: _check_field_counts should catch these
        raise fail(payload, f"not a well-formed CSV file: {exc}") from None
    except pd.errors.EmptyDataError:
        raise fail(payload, "the file is empty (no header line)") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise fail(payload, f"not a well-formed CSV file: {exc}") from None


def _check_field_counts(text: str, payload: Payload) -> None:
    """Refuse lines with another number of fields than the header line, naming them.

    pandas fills a short line's missing fields with nulls, so a row cut in the middle (a
    truncated download) would pass as a row with missing values. Quoted fields are read as
    pandas reads them; blank lines are not rows. Line numbers count the file's lines from 1.
    """
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    header: tuple[int, int] | None = None  # (line, fields)
    wrong: list[tuple[int, int]] = []
    last = end = 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num  # a quoted field may span lines
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = (start, len(row))
            elif len(row) != header[1]:
                wrong.append((start, len(row)))
            last = start
    except csv.Error as exc:
        raise fail(payload, f"not a well-formed CSV file: line {reader.line_num}: {exc}") from None
    if header is None or not wrong:
        return
    shown = ", ".join(f"line {line} has {count}" for line, count in wrong[:MAX_SHOWN])
    more = f" and {len(wrong) - MAX_SHOWN} more lines" if len(wrong) > MAX_SHOWN else ""
    problem = (
        f"wrong number of fields: {shown}{more}, but the header line (line {header[0]}) has "
        f"{header[1]}; every line needs one field per column"
    )
    if wrong[-1][0] == last and not text.endswith(("\n", "\r")):
        problem += f"; the file seems cut off: its last line (line {last}) has no newline"
    raise fail(payload, problem)


def _rename(raw: pd.DataFrame, columns: Mapping[str, str] | None, payload: Payload) -> pd.DataFrame:
    """Lower-case, strip and map the file's column names to ours."""
    mapping = {str(k).strip().lower(): v for k, v in (columns or {}).items()}
    names = [str(c).strip().lower() for c in raw.columns]
    names = [mapping.get(n, n) for n in names]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise fail(payload, f"column names repeat after matching ignoring case: {dupes}")
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
            raise fail(payload, f"missing required column '{col}' (found: {found}){hint}")


def _to_float(df: pd.DataFrame, col: str, payload: Payload) -> pd.Series:
    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    # the common case at a quarter of the cost: every value is a number as written (pandas
    # reads the spaces around one); anything else (blank, text) takes the checked path below
    quick = pd.to_numeric(raw, errors="coerce")
    if not (quick.isna() & raw.notna()).any():
        return quick.astype("float64")
    text = raw.astype("string").str.strip()
    text = text.mask(text == "", None)
    out = pd.to_numeric(text, errors="coerce")
    bad = (text.notna() & out.isna()).fillna(False).astype(bool)
    if bad.any():
        raise fail(payload, f"column '{col}' has non-numeric values {offending(raw, bad)}")
    return out.astype("float64")


def parse_payload(
    payload: Payload,
    columns: Mapping[str, str] | None = None,
    date_format: str | None = None,
    covariates: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The payload's rows in the curated schema of its data set.

    prices -> ``schema.PRICE_COLUMNS`` (``series_id`` = payload.key; ``date`` and ``close``
    required; ``open``/``high``/``low``/``volume`` null when absent). weather ->
    ``schema.WEATHER_COLUMNS`` (``location`` = payload.key; ``temp_mean`` derived as
    (temp_max + temp_min) / 2 when absent). Column names match ignoring case; ``columns``
    maps the file's names to ours (default: ``payload.request["columns"]`` if recorded).
    Date strings are ISO 8601 unless ``date_format`` (default: ``payload.request["date_format"]``
    if recorded) declares a strftime pattern every value must match.
    ``covariates`` (prices only) maps a file column (matched ignoring case) to a declared
    covariate's name: those columns are kept as floats under that name, after the schema's
    columns; a declared column the file lacks is an error naming it.
    Extra columns are dropped and listed in ``attrs["ignored_columns"]``; a file without rows
    says why in ``attrs["no_rows"]`` (e.g. "header only").
    Raises :class:`ParseError` naming the file and the problem.
    """
    if payload.dataset == schema.PRICES:
        required = _PRICE_REQUIRED
        key_col, out_cols = schema.SERIES_ID, schema.PRICE_COLUMNS
    elif payload.dataset == schema.WEATHER:
        required = _WEATHER_REQUIRED
        key_col, out_cols = schema.LOCATION, schema.WEATHER_COLUMNS
    else:
        raise fail(payload, f"unknown data set '{payload.dataset}' (expected prices or weather)")
    if columns is None:
        columns = payload.request.get("columns") or None
    if date_format is None:
        date_format = payload.request.get("date_format") or None
    df = _rename(_read_raw(payload), columns, payload)
    _check_columns(df, required, payload)
    kept = {str(k).strip().lower(): v for k, v in (covariates or {}).items()}
    missing = sorted(k for k in kept if k not in df.columns)
    if missing and not df.empty:
        found = ", ".join(map(str, df.columns))
        raise fail(
            payload, f"missing the columns of declared covariates {missing} (found: {found})"
        )
    out = pd.DataFrame(index=df.index)
    out[key_col] = pd.Series([payload.key] * len(df), index=df.index, dtype="str")
    out[schema.DATE] = to_dates(df, payload, date_format)
    for col in [c for c in out_cols if c not in (key_col, schema.DATE)]:
        if col in df.columns:
            out[col] = _to_float(df, col, payload)
        elif col == "temp_mean":
            out[col] = (out["temp_max"] + out["temp_min"]) / 2
        else:
            out[col] = pd.Series(float("nan"), index=df.index, dtype="float64")
    for col, name in kept.items():
        if col in df.columns:
            out[name] = _to_float(df, col, payload)
        else:  # a header-only file
            out[name] = pd.Series(float("nan"), index=df.index, dtype="float64")
    out = out[[*out_cols, *kept.values()]].reset_index(drop=True)
    out.attrs[IGNORED_COLUMNS] = [str(c) for c in df.columns if c not in out_cols and c not in kept]
    if out.empty and (reason := _no_rows(payload)):
        out.attrs[NO_ROWS] = reason
    return out


def parse_exogenous(
    payload: Payload,
    key_column: str,
    issued_column: str | None,
    values: list[str],
    columns: Mapping[str, str] | None = None,
    date_format: str | None = None,
) -> pd.DataFrame:
    """An exogenous data set's file: columns ``key`` (text), ``date``, ``issued`` (a day, or
    NaT without ``issued_column``) and the ``values`` columns (floats). Names match ignoring
    case (``columns`` maps the file's names to ours first); other columns are listed in
    ``attrs["ignored_columns"]``. Raises :class:`ParseError` naming the file and the problem."""
    if columns is None:
        columns = payload.request.get("columns") or None
    if date_format is None:
        date_format = payload.request.get("date_format") or None
    df = _rename(_read_raw(payload), columns, payload)
    key, issued = key_column.strip().lower(), (issued_column or "").strip().lower()
    wanted = [v.strip().lower() for v in values]
    _check_columns(df, [key, schema.DATE, *([issued] if issued else []), *wanted], payload)
    out = pd.DataFrame(index=df.index)
    keys = df[key].astype("string").str.strip()
    if keys.isna().any() or (keys == "").any():
        raise fail(
            payload,
            f"column '{key}' has empty keys {offending(df[key], keys.isna() | (keys == ''))}",
        )
    out["key"] = keys.astype("str")
    out[schema.DATE] = to_dates(df, payload, date_format)
    if issued:
        stamped = df[[issued]].rename(columns={issued: schema.DATE})
        out[schema.ISSUED] = to_dates(stamped, payload, date_format)
    else:
        out[schema.ISSUED] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    for name, col in zip(values, wanted, strict=True):
        out[name] = _to_float(df, col, payload)
    out = out.reset_index(drop=True)
    used = {key, schema.DATE, issued, *wanted}
    out.attrs[IGNORED_COLUMNS] = [str(c) for c in df.columns if c not in used]
    if out.empty and (reason := _no_rows(payload)):
        out.attrs[NO_ROWS] = reason
    return out


def _no_rows(payload: Payload) -> str | None:
    """Why a file gave no rows, for the run's notes; None for answers that may well be empty."""
    if payload.media_type == JSON or (payload.source == "stooq" and is_no_data(payload.content)):
        return None  # an API's answer for days without data
    if payload.media_type == PARQUET or payload.name.lower().endswith(".parquet"):
        return "a Parquet file without rows"
    return "header only"


def filter_dates(df: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """A copy of the rows dated in ``[start, end]`` (inclusive)."""
    dates = pd.to_datetime(df[schema.DATE])
    keep = (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))
    return df.loc[keep].reset_index(drop=True)
