"""Columns derived before validation, so continuity checks run as plain GX expectations.

Each is computed per key (series or location) over the batch joined with recent curated history
(a batch that starts after a hole, or jumps from yesterday's curated value, is seen), and is
set on batch rows only: history rows were judged by the runs that committed them.

- ``staleness_days``: on the newest batch row of each key, business days (prices) or days
  (weather) from the key's newest date (batch or history) to the as-of date; null elsewhere.
- ``gap_days``: missing business days (prices) or days (weather) since the key's previous row.
- ``jump_zscore``: the day-over-day change (log change of close; change of temp_mean) as a
  z-score against the key's other changes (history + batch, leave-one-out, so one spike does not
  hide itself); null with fewer than ``MIN_CHANGES`` other changes.
- ``jump_robust_z``: how absurd a row's value is against the rows before it, in robust standard
  deviations (``1.4826 * MAD`` around the median, at least the 90th percentile of the absolute
  deviations / 1.645) of the key's day-over-day changes (history + batch: these barely move for
  one spike, so it cannot hide itself): the smaller of its change from the previous row and
  from the row before that (on a key's first two rows the next rows stand in). Taking the
  smaller blames the spike itself, not the next row that comes back to normal (far from the
  spike, near the row before it); a level shift (a unit change from one day on) is far from
  both and is flagged on its first day. Rows with a null value are skipped. Null with fewer
  than ``MIN_CHANGES`` changes or a zero scale (a flat series).
- ``jump_factor`` (prices only; null for weather, where values can be zero or negative): the
  same smaller-of-two change as a factor ``>= 1``, ``max(close / previous, previous / close)``;
  needs one previous row only, so it works on a short history.

Never raises on bad data: unparseable dates and values give nulls, which the checks skip (the
critical type and range checks report them).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline_lib import schema

STALENESS = "staleness_days"
GAP = "gap_days"
JUMP = "jump_zscore"
ABSURD_Z = "jump_robust_z"
FACTOR = "jump_factor"
DERIVED = [STALENESS, GAP, JUMP, ABSURD_Z, FACTOR]
MIN_CHANGES = 10  # other changes needed before a z-score means anything
MAD_SCALE = 1.4826  # MAD * this estimates the standard deviation of normal data
# ... and so does the 90th percentile of |change - median| / 1.645. The robust scale is the larger
# of the two: a series whose changes are very regular (price ticks, a sawtooth) has a MAD near
# zero, and its ordinary, recurring larger changes would look absurd by the MAD alone. Up to 10%
# of absurd changes still leave the percentile alone, so one spike cannot hide itself.
TAIL_QUANTILE, TAIL_SCALE = 0.9, 1.645
MAX_LOG_FACTOR = 700.0  # exp() of more overflows: such a factor is shown as e^700

_KEY = {schema.PRICES: schema.SERIES_ID, schema.WEATHER: schema.LOCATION}
_VALUE = {schema.PRICES: schema.TARGET, schema.WEATHER: "temp_mean"}
_BUSINESS_DAYS = {schema.PRICES: True, schema.WEATHER: False}


def has_derived(dataset: str) -> bool:
    return dataset in _KEY


def add_derived(
    df: pd.DataFrame,
    dataset: str,
    as_of: dt.date,
    history: pd.DataFrame | None = None,
    signed: bool = False,
) -> pd.DataFrame:
    """A copy of ``df`` (default index) with the DERIVED columns; ``df`` is left unchanged.

    ``signed`` prices (zero or negative allowed) are judged on their changes, like weather,
    not on log changes, and get no ``jump_factor``."""
    out = df.reset_index(drop=True).copy()
    for name in DERIVED:
        out[name] = np.nan
    key, value = _KEY[dataset], _VALUE[dataset]
    if key not in out.columns or schema.DATE not in out.columns or out.empty:
        return out
    rows = _frame(out, key, value, batch=True)
    past = _frame(history, key, value, batch=False) if history is not None else None
    if past is not None and not past.empty:
        past = past[past[schema.DATE] <= pd.Timestamp(as_of)]
        rows = pd.concat([past, rows], ignore_index=True)
    rows = rows.dropna(subset=[key, schema.DATE])
    # A batch row replaces a curated row of the same day (as the commit will); sort by time.
    rows = rows.sort_values([key, schema.DATE, "_batch"]).drop_duplicates(
        [key, schema.DATE], keep="last"
    )
    business = _BUSINESS_DAYS[dataset]
    rows[GAP] = _gaps(rows, key, business)
    log = dataset == schema.PRICES and not signed
    rows[JUMP] = _jump_zscores(rows, key, log=log)
    rows[ABSURD_Z], rows[FACTOR] = _absurd(rows, key, log=log)
    rows[STALENESS] = _staleness(rows, key, as_of, business)
    derived = rows.loc[rows["_batch"], [key, schema.DATE, *DERIVED]]
    keys = pd.DataFrame({key: out[key], schema.DATE: _dates(out[schema.DATE])})
    merged = keys.merge(derived, on=[key, schema.DATE], how="left")  # one row per batch row
    for name in DERIVED:
        out[name] = merged[name].to_numpy(dtype="float64")
    for name in (JUMP, ABSURD_Z, FACTOR):  # readable in reports; far finer than any threshold
        out[name] = out[name].round(2)
    return out


def _dates(values: pd.Series) -> pd.Series:
    dates = pd.to_datetime(values, errors="coerce")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    return dates.dt.normalize().astype("datetime64[ns]")


def _frame(df: pd.DataFrame, key: str, value: str, batch: bool) -> pd.DataFrame:
    """Key, date, value (numbers, nulls for anything else) and whether the row is new."""
    values = df[value] if value in df.columns else pd.Series(np.nan, index=df.index)
    return pd.DataFrame(
        {
            key: df[key].astype("object"),
            schema.DATE: _dates(df[schema.DATE]),
            "_value": pd.to_numeric(values, errors="coerce").astype("float64"),
            "_batch": batch,
        }
    )


def _missing_days(start: pd.Series, end: pd.Series, business: bool) -> np.ndarray:
    """Days (business days) strictly between ``start`` and ``end``; NaN where start is null."""
    result = np.full(len(end), np.nan)
    ok = start.notna().to_numpy()
    if not ok.any():
        return result
    begin = start[ok].to_numpy().astype("datetime64[D]") + 1
    stop = end[ok].to_numpy().astype("datetime64[D]")
    if business:
        result[ok] = np.busday_count(begin, stop)
    else:
        result[ok] = (stop - begin).astype("int64")
    return result


def _gaps(rows: pd.DataFrame, key: str, business: bool) -> np.ndarray:
    previous = rows.groupby(key, sort=False)[schema.DATE].shift(1)
    return _missing_days(previous, rows[schema.DATE], business)


def _jump_zscores(rows: pd.DataFrame, key: str, log: bool) -> pd.Series:
    """Leave-one-out z-score of each day-over-day change within its key."""
    values = rows["_value"]
    previous = values.groupby(rows[key], sort=False).shift(1)
    if log:
        ok = (values > 0) & (previous > 0)
        change = pd.Series(np.nan, index=rows.index)
        change[ok] = np.log(values[ok] / previous[ok])
    else:
        change = values - previous
    by_key = change.groupby(rows[key], sort=False)
    n = by_key.transform("count")
    total = by_key.transform("sum")
    squares = (change**2).groupby(rows[key], sort=False).transform("sum")
    others = n - 1
    mean = (total - change) / others
    var = (squares - change**2 - others * mean**2) / (others - 1)
    std = np.sqrt(var.clip(lower=0))
    z = ((change - mean) / std).abs()
    enough = (others >= MIN_CHANGES) & (std > 0)
    return z.where(enough)


def _absurd(rows: pd.DataFrame, key: str, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the robust z (``jump_robust_z``) and, with ``log`` (prices), the factor
    (``jump_factor``) of the smaller of its changes from two other rows (see ``_two_sides``).
    Rows without a usable value (null; for prices, not positive) are left out."""
    z = np.full(len(rows), np.nan)
    factor = np.full(len(rows), np.nan)
    values = rows["_value"].to_numpy()
    usable = values > 0 if log else np.isfinite(values)
    if not usable.any():
        return z, factor
    level = pd.Series(np.log(values[usable]) if log else values[usable])
    keys = pd.Series(rows[key].to_numpy()[usable])
    by_key = level.groupby(keys, sort=False)
    apart = {lag: level - by_key.shift(lag) for lag in (1, 2, -1, -2)}  # lag -1: the next row
    step = apart[1]  # the day-over-day changes
    median = step.groupby(keys, sort=False).transform("median")
    spread = (step - median).abs().groupby(keys, sort=False)
    scale = np.fmax(  # both estimate the std dev of normal changes; see TAIL_SCALE
        MAD_SCALE * spread.transform("median"),
        spread.transform("quantile", TAIL_QUANTILE) / TAIL_SCALE,
    )
    enough = (step.groupby(keys, sort=False).transform("count") >= MIN_CHANGES) & (scale > 0)
    robust = {lag: (d - lag * median).abs() / scale for lag, d in apart.items()}
    z[usable] = _two_sides(robust).where(enough).to_numpy()
    if log:
        logs = _two_sides({lag: d.abs() for lag, d in apart.items()})
        factor[usable] = np.exp(logs.clip(upper=MAX_LOG_FACTOR)).to_numpy()
    return z, factor


def _two_sides(by_lag: dict[int, pd.Series]) -> pd.Series:
    """The smaller of a row's distances to the previous row and to the one before it, so the
    row that comes back to normal after a spike is not blamed (it is near the row before the
    spike). On a key's first two rows the next rows stand in for the missing ones: the first
    row is compared with the next two, the second with the previous and the next."""
    prev1, prev2, next1, next2 = by_lag[1], by_lag[2], by_lag[-1], by_lag[-2]
    has_prev = prev1.notna()
    first = prev1.where(has_prev, next1)
    second = prev2.where(has_prev, next2)
    second = second.where(second.notna() | ~has_prev, next1)
    return np.fmin(first, second)  # one alone where the key has no other row to compare with


def _staleness(rows: pd.DataFrame, key: str, as_of: dt.date, business: bool) -> np.ndarray:
    """On each key's newest batch row: days from the key's newest date to as_of."""
    newest = rows.groupby(key, sort=False)[schema.DATE].transform("max")
    newest_batch = rows[schema.DATE].where(rows["_batch"]).groupby(rows[key], sort=False)
    is_last = rows["_batch"] & (rows[schema.DATE] == newest_batch.transform("max"))
    target = pd.Series(pd.Timestamp(as_of) + pd.Timedelta(days=1), index=rows.index)
    days = _missing_days(newest, target, business)
    return np.where(is_last, days, np.nan)


def newest_rows(history: pd.DataFrame | None, dataset: str, as_of: dt.date) -> pd.DataFrame:
    """For a run with nothing new: each key's newest curated row (dated <= as_of) and its
    ``staleness_days``; columns key, date, staleness_days."""
    key = _KEY[dataset]
    columns = [key, schema.DATE, STALENESS]
    if history is None or history.empty or key not in history or schema.DATE not in history:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    rows = pd.DataFrame({key: history[key], schema.DATE: _dates(history[schema.DATE])})
    rows = rows[rows[schema.DATE] <= pd.Timestamp(as_of)].dropna()
    rows = rows.sort_values([key, schema.DATE]).drop_duplicates(key, keep="last")
    target = pd.Series(pd.Timestamp(as_of) + pd.Timedelta(days=1), index=rows.index)
    rows[STALENESS] = _missing_days(rows[schema.DATE], target, _BUSINESS_DAYS[dataset])
    return rows[columns].reset_index(drop=True)
