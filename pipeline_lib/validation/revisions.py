"""Revisions: batch rows that change values already curated for the same key and date.

Late corrections are real (a vendor fixes a close, a re-delivered file carries a corrected day),
so a revision is applied like any batch row, but recorded: the batch's validation report gets a
``revisions`` entry (warning) naming the rows with old and new values, and a note for the run.
A batch that revises more than ``max_revision_share`` of a key's curated rows in the history
read by the gate, and more than ``revision_rows_always_allowed`` rows, is refused instead (the
same entry, critical): that is a different series, a shifted file or a unit change more often
than a correction.

Values are compared column by column with a relative tolerance (``RTOL``); a null equals a
null, and a value appearing where curated data had none (or vanishing) is a revision. Identical
values are no revision: nightly sources fetch the last few days again
(``ingest.revision_lookback_days``) and a file may be delivered twice. Never raises on bad data:
unparseable keys, dates and values are left out (the type and null checks report them).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import ValidationConfig
from pipeline_lib.validation.report import MAX_ROWS, ExpectationFailure

CHECK = "revisions"
RTOL = 1e-6  # relative difference below which two values are the same (float noise, rounding)
NOTE_EXAMPLES = 3  # revised rows spelled out in a note; the rest are counted
COLUMNS = ["column", "old", "new"]  # of find_revisions, after the key and the date

_KEY = {schema.PRICES: schema.SERIES_ID, schema.WEATHER: schema.LOCATION}
_VALUES = {schema.PRICES: schema.PRICE_VALUES, schema.WEATHER: schema.WEATHER_VALUES}
_KEY_LABELS = {schema.SERIES_ID: "series", schema.LOCATION: "location"}


def has_revisions(dataset: str) -> bool:
    return dataset in _KEY


def find_revisions(
    df: pd.DataFrame, history: pd.DataFrame | None, dataset: str, as_of: dt.date
) -> pd.DataFrame:
    """One row per changed value: key, date, column, old (curated) and new (batch) value,
    sorted by key, date and column (schema order). Only ``history`` rows dated <= ``as_of`` and
    value columns present in both frames are compared."""
    key = _KEY[dataset]
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in [key, schema.DATE, *COLUMNS]})
    if history is None or history.empty or df.empty:
        return empty
    if not {key, schema.DATE} <= set(df.columns) & set(history.columns):
        return empty
    values = [c for c in _VALUES[dataset] if c in df.columns and c in history.columns]
    new = _frame(df, key, values)
    old = _frame(history, key, values)
    old = old[old[schema.DATE] <= pd.Timestamp(as_of)]
    both = new.merge(old, on=[key, schema.DATE], suffixes=("_new", "_old"))
    found = []
    for order, column in enumerate(values):
        was, now = both[f"{column}_old"], both[f"{column}_new"]
        same = (was.isna() & now.isna()) | np.isclose(now, was, rtol=RTOL, atol=0.0)
        changed = both.loc[~same, [key, schema.DATE]].assign(
            column=column, old=was[~same], new=now[~same], _order=order
        )
        found.append(changed)
    out = pd.concat(found, ignore_index=True) if found else empty.assign(_order=0)
    if out.empty:
        return empty
    out = out.sort_values([key, schema.DATE, "_order"], ignore_index=True)
    return out.drop(columns="_order").astype({"old": "float64", "new": "float64"})


def revision_check(
    revisions: pd.DataFrame,
    history: pd.DataFrame | None,
    dataset: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None = None,
) -> ExpectationFailure | None:
    """The ``revisions`` report entry for ``find_revisions``' result, or None when nothing was
    revised: a warning, or critical when a key's revised rows are over its limit,
    ``max(revision_rows_always_allowed, max_revision_share * curated rows)``, the curated rows
    being the key's rows in ``history`` dated <= ``as_of``."""
    if revisions.empty:
        return None
    t = thresholds or ValidationConfig()
    key = _KEY[dataset]
    curated = _curated_rows(history, key, as_of)
    revised = revisions.drop_duplicates([key, schema.DATE]).groupby(key, sort=True).size()
    parts, refused = [], False
    for k, n in revised.items():
        total = int(curated.get(k, 0))
        over = n > max(t.revision_rows_always_allowed, t.max_revision_share * total)
        refused = refused or over
        share = f" ({n / total:.1%})" if total else ""
        label = f"{_KEY_LABELS[key]} {k}: " if len(revised) > 1 else ""
        parts.append(f"{label}{n} of {total} curated rows revised{share}")
    if refused:
        verdict = (
            "over the limit, refused; if the corrections are right, raise "
            "validation.max_revision_share"
        )
    else:
        verdict = "applied"
    columns = [c for c in _VALUES[dataset] if c in set(revisions["column"])]
    return ExpectationFailure(
        check=CHECK,
        expectation_type="curated_values_unchanged",  # a pre-check: batch vs curated history
        columns=columns,
        severity="critical" if refused else "warning",
        risk="revisions",
        expected=(
            f"at most {t.revision_rows_always_allowed} rows or {_percent(t.max_revision_share)}"
            " of the curated rows revised"
        ),
        unexpected_count=int(revised.sum()),
        rows=_rows(revisions, key)[:MAX_ROWS],
        details="; ".join(parts) + f": {verdict}",
    )


def revision_note(
    batch_name: str, revisions: pd.DataFrame, dataset: str, refused: bool = False
) -> str:
    """``prices-X: 2 rows revised: 2015-06-03 close 10.8 -> 11.34; 2015-06-04 close 10.9 ->
    11.45``: the first ``NOTE_EXAMPLES`` revised rows of ``find_revisions``' result, then a
    count of the others (the key before each date when there are several keys)."""
    key = _KEY[dataset]
    keys = revisions[key].nunique()
    examples = []
    for (k, day), changes in revisions.groupby([key, schema.DATE], sort=True):
        cells = ", ".join(
            f"{c} {_value(o)} -> {_value(n)}"
            for c, o, n in zip(changes["column"], changes["old"], changes["new"], strict=True)
        )
        examples.append(f"{k + ' ' if keys > 1 else ''}{_day(day)} {cells}")
    n = len(examples)
    text = f"{batch_name}: {n} row{'s' if n != 1 else ''} revised"
    text += " (refused: over the limit)" if refused else ""
    text += ": " + "; ".join(examples[:NOTE_EXAMPLES])
    if n > NOTE_EXAMPLES:
        text += f"; and {n - NOTE_EXAMPLES} more"
    return text


def _frame(df: pd.DataFrame, key: str, values: list[str]) -> pd.DataFrame:
    """Key (text), date (day), values (numbers); rows without key or date dropped, one per day."""
    dates = pd.to_datetime(df[schema.DATE], errors="coerce")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    out = pd.DataFrame(
        {
            key: df[key].astype("object"),
            schema.DATE: dates.dt.normalize().astype("datetime64[ns]"),
            **{c: pd.to_numeric(df[c], errors="coerce").astype("float64") for c in values},
        }
    )
    out = out.dropna(subset=[key, schema.DATE])
    out[key] = out[key].astype(str)
    return out.drop_duplicates([key, schema.DATE], keep="last")


def _curated_rows(history: pd.DataFrame | None, key: str, as_of: dt.date) -> pd.Series:
    """Curated rows per key dated <= as_of (distinct days)."""
    if history is None or history.empty or key not in history or schema.DATE not in history:
        return pd.Series(dtype="int64")
    rows = _frame(history, key, [])
    return rows[rows[schema.DATE] <= pd.Timestamp(as_of)].groupby(key).size()


def _rows(revisions: pd.DataFrame, key: str) -> list[dict[str, object]]:
    """One example row per revised key and date: ``{key, date, column: "old -> new", ...}``."""
    rows = []
    for (k, day), changes in revisions.groupby([key, schema.DATE], sort=True):
        row: dict[str, object] = {key: k, schema.DATE: _day(day)}
        for c, o, n in zip(changes["column"], changes["old"], changes["new"], strict=True):
            row[c] = f"{_value(o)} -> {_value(n)}"
        rows.append(row)
    return rows


def _day(value: object) -> str:
    return pd.Timestamp(value).date().isoformat()


def _value(value: float) -> str:
    """A value as people write it: ``10.8``, ``11.34``, ``1500000000``; ``null`` for a null."""
    if value is None or math.isnan(value):
        return "null"
    return f"{value:.10g}"


def _percent(share: float) -> str:
    return f"{share * 100:g}%"
