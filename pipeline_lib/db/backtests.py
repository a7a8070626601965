"""A night's backtest in SQL: each window written once, each night naming the windows it scored.

A night's backtest scores every series, model version, origin and horizon (4.5 million rows
at 1,000 series), yet a baseline's forecast from an origin, with its actuals and error terms,
is the same on every night whose backtest holds that origin (the origins move one step on
every second night, so consecutive nights share all or all but one); tonight's LSTM's windows
are new each night, the champion's where its hold-out start moved. So a *window* (one model
version's forecast of one series from one origin: its rows over the horizons) is stored once,
in ``backtest_windows`` and ``backtest_forecasts``, under an id that digests its key and rows
(:func:`window_ids`; a window whose rows change, a revised actual, is another window); a night
writes the windows it scored that are not stored yet, names all of them in ``backtest_nights``
and writes each series' MASE scale in ``backtest_series``. ``scaled_error`` is the only term
that depends on the night (the scale comes from the history up to the night's first origin),
so it is not stored: the view ``backtest_results`` (``sql/views.sql``) is every night's rows,
with ``scaled_error = abs_error / mase_scale``, as the table was up to revision 0007. What the
next night's decay check reads of it, per series, model and horizon (:func:`scores_of`), is
written with the night in ``backtest_scores``: a few thousand rows instead of the night's rows
aggregated through the view (about 1 s at 100 series on SQLite).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, delete, exists, select

from pipeline_lib import schema
from pipeline_lib.db import values as v
from pipeline_lib.db.frames import to_arrow
from pipeline_lib.db.tables import (
    backtest_forecasts,
    backtest_nights,
    backtest_scores,
    backtest_series,
    backtest_windows,
)
from pipeline_lib.db.upsert import BULK_ROWS, replace_rows, transaction, upsert_table

SLICE_ROWS = 500_000  # backtest rows converted and written at once (its memory)
ID_BATCH = 10_000  # window ids per lookup (SQLite binds at most 32,766 values a statement)
WINDOW_KEY = ["model_version", "series_id", "forecast_date"]
# the columns of a window's rows (backtest_forecasts without its key)
ROW_FIELDS = [c.name for c in backtest_forecasts.columns if c.name != "window_id"]
_DATES = {"forecast_date", "target_date"}
_TEXT = {"model_version", "series_id", "model"}
_NUMBERS = {"horizon": np.int64, "covered": np.bool_}
_MASK = np.uint64(0x7FFF_FFFF_FFFF_FFFF)  # a positive BIGINT
SCORE_KEY = ["series_id", "model", "horizon"]
# per score key: the mean finite scaled_error, and the sums of abs_error and scaled_error over
# the rows whose scaled_error is finite and positive (NaN when none)
SCORE_FIELDS = [*SCORE_KEY, "backtest_mase", "scale_abs_error", "scale_scaled_error"]


def window_ids(df: pd.DataFrame) -> np.ndarray:
    """Per row of ``df``, the id of its window: a 63-bit digest of the window's key
    (``model_version, series_id, forecast_date``), its model and every stored value of its rows.

    The same rows give the same id in any order, run or process (pandas' fixed-key SipHash of
    each row, summed over the window); a window whose rows differ in any value gets another.
    """
    if df.empty:
        return np.zeros(0, dtype=np.int64)
    columns = {}
    for name in [*WINDOW_KEY, "model", *ROW_FIELDS]:  # one dtype per column, whatever came
        values = df[name]
        if name in _DATES:
            columns[name] = pd.to_datetime(values).to_numpy("datetime64[ns]")
        elif name in _TEXT:
            columns[name] = values.astype(str).to_numpy(object)
        else:
            columns[name] = values.to_numpy(_NUMBERS.get(name, np.float64))
    frame = pd.DataFrame(columns)
    row_hash = pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)
    codes = frame.groupby(WINDOW_KEY, sort=False).ngroup().to_numpy()
    sums = np.zeros(int(codes.max()) + 1, dtype=np.uint64)
    np.add.at(sums, codes, row_hash)  # modulo 2**64
    return (sums[codes] & _MASK).astype(np.int64)


def write_backtest_results(
    bind: Engine | Connection,
    df: pd.DataFrame,
    run_id: str,
    backtest_date: dt.date,
    bulk_rows: int = BULK_ROWS,
    series_ids: list[str] | None = None,
    slice_rows: int = SLICE_ROWS,
) -> int:
    """Write one night's backtest, replacing what ``backtest_date`` held (only of
    ``series_ids`` when given: a run over a subset of the series leaves the others' rows).

    ``df``: the rows of :func:`pipeline_lib.forecasting.backtest.score_backtest` (forecast
    columns, ``model``, ``model_version``, ``actual``, the metric terms and ``mase_scale``, the
    series' MASE scale; ``scaled_error`` is not stored, the view derives it). Whole series at
    a time, about ``slice_rows`` rows a slice, in one transaction: the windows not stored yet
    are written, the night's windows and scales replace the night's. Returns the rows of the
    night (what ``backtest_results`` holds for it now).
    """
    if schema.MASE_SCALE not in df.columns:
        raise ValueError(
            f"backtest rows: missing column {schema.MASE_SCALE!r} (each series' MASE scale); "
            f"got {sorted(map(str, df.columns))}"
        )
    stamp = {"run_id": run_id, "created_at": v.utcnow()}
    night = {"backtest_date": backtest_date}
    with transaction(bind) as conn:
        if series_ids is not None:  # series of the run without rows tonight
            gone = sorted(set(series_ids) - set(df.get("series_id", [])))
            for i in range(0, len(gone), ID_BATCH):
                part = gone[i : i + ID_BATCH]
                for t in (backtest_nights, backtest_series, backtest_scores):
                    conn.execute(
                        delete(t).where(t.c.backtest_date == backtest_date, t.c.series_id.in_(part))
                    )
        if df.empty:
            to_arrow(backtest_forecasts, df.assign(window_id=0))  # the columns are checked
            return 0
        for part in series_slices(df, slice_rows):
            _write_slice(conn, part, stamp, night, bulk_rows)
        return len(df)


def _write_slice(
    conn: Connection, part: pd.DataFrame, stamp: dict, night: dict, bulk_rows: int
) -> None:
    ids = window_ids(part)
    first = ~pd.Series(ids).duplicated().to_numpy()
    windows = part.loc[first, [*WINDOW_KEY, "model"]].assign(window_id=ids[first])
    stored = _stored_windows(conn, windows)
    new = ~windows["window_id"].isin(stored).to_numpy()
    if new.any():
        upsert_table(
            conn, backtest_windows, to_arrow(backtest_windows, windows.loc[new], stamp), bulk_rows
        )
        fresh = np.isin(ids, windows["window_id"].to_numpy()[new])
        rows = part.loc[fresh, ROW_FIELDS].assign(window_id=ids[fresh])
        data = to_arrow(backtest_forecasts, rows)
        upsert_table(conn, backtest_forecasts, data, bulk_rows, check=False)  # parents above
    nights = windows[["series_id", "window_id"]]
    replace_rows(
        conn,
        backtest_nights,
        to_arrow(backtest_nights, nights, night),
        ["backtest_date", "series_id"],
        bulk_rows,
    )
    scales = part.groupby("series_id", sort=True, observed=True)[schema.MASE_SCALE].first()
    scales = scales.reset_index()
    for table, rows, extra in (
        (backtest_series, scales, night | stamp),
        (backtest_scores, scores_of(part, _scaled(part)), night),
    ):
        replace_rows(
            conn, table, to_arrow(table, rows, extra), ["backtest_date", "series_id"], bulk_rows
        )


def _scaled(part: pd.DataFrame) -> np.ndarray:
    """Each row's scaled_error as the view derives it: abs_error / mase_scale, NaN where the
    scale is not positive."""
    scale = pd.to_numeric(part[schema.MASE_SCALE]).to_numpy(np.float64)
    error = pd.to_numeric(part["abs_error"]).to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, error / scale, np.nan)


def scores_of(rows: pd.DataFrame, scaled_error: np.ndarray | None = None) -> pd.DataFrame:
    """``SCORE_FIELDS`` of backtest rows (``abs_error``, ``series_id``, ``model``, ``horizon``
    and ``scaled_error``, or its values given): per (series_id, model, horizon),
    ``backtest_mase``, the mean finite scaled_error (NaN when none is finite), and
    ``scale_abs_error`` and ``scale_scaled_error``, the sums of abs_error and scaled_error over
    the rows whose scaled_error is finite and positive (NaN when there are none)."""
    given = rows["scaled_error"] if scaled_error is None else pd.Series(scaled_error, rows.index)
    scaled = pd.to_numeric(given, errors="coerce").astype(np.float64)
    finite = np.isfinite(scaled)
    positive = finite & (scaled > 0)
    frame = pd.DataFrame(
        {
            # categories group twice as fast as text (a night's 392,000 rows: 0.22 -> 0.11 s)
            "series_id": pd.Categorical(rows["series_id"]),
            "model": pd.Categorical(rows["model"]),
            "horizon": rows["horizon"].astype(int).to_numpy(),
            "backtest_mase": scaled.where(finite).to_numpy(),
            "scale_abs_error": pd.to_numeric(rows["abs_error"])
            .astype(np.float64)
            .where(positive)
            .to_numpy(),
            "scale_scaled_error": scaled.where(positive).to_numpy(),
        }
    )
    grouped = frame.groupby(SCORE_KEY, sort=True, observed=True)
    out = grouped[["backtest_mase"]].mean()
    sums = grouped[["scale_abs_error", "scale_scaled_error"]].sum(min_count=1)
    out = out.join(sums).reset_index()[SCORE_FIELDS]
    return out.astype({"series_id": object, "model": object})


def _stored_windows(conn: Connection, windows: pd.DataFrame) -> set[int]:
    """The ids of ``windows`` stored already. Raises RuntimeError if a stored window under
    one of these ids has another key (a digest collision: never seen, not left silent)."""
    t = backtest_windows
    query = select(t.c.window_id, *(t.c[k] for k in WINDOW_KEY)).where(
        t.c.window_id.in_(bindparam("ids", expanding=True))
    )
    ids = windows["window_id"].to_numpy()
    found: dict[int, tuple] = {}
    for i in range(0, len(ids), ID_BATCH):
        batch = [int(x) for x in ids[i : i + ID_BATCH]]
        found.update((r[0], tuple(r[1:])) for r in conn.execute(query, {"ids": batch}))
    if found:
        mine = windows.set_index("window_id").loc[list(found), WINDOW_KEY]
        for wid, (version, series, origin) in zip(
            mine.index, mine.itertuples(index=False), strict=True
        ):
            theirs = found[int(wid)]
            if (version, series, pd.Timestamp(origin).date()) != (
                theirs[0],
                theirs[1],
                pd.Timestamp(theirs[2]).date(),
            ):
                raise RuntimeError(
                    f"backtest window id {wid} is stored for {theirs}, not for "
                    f"{(version, series, origin)}: a digest collision; nothing was written"
                )
    return set(found)


def series_slices(df: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """The rows of ``df`` by whole series (in series order), about ``rows`` rows a slice."""
    sizes = df["series_id"].value_counts(sort=False).sort_index()
    ids = df["series_id"]
    chunk: list[str] = []
    count = 0
    for sid, size in sizes.items():
        chunk.append(str(sid))
        count += int(size)
        if count >= rows:
            yield df.loc[ids.isin(chunk)]
            chunk, count = [], 0
    if chunk:
        yield df.loc[ids.isin(chunk)]


def prune_backtest_results(bind: Engine | Connection, before: dt.date) -> int:
    """Delete the backtests dated before ``before`` (``backtest.keep_days``), and the windows
    no night left names; returns the windows the deleted nights named (the nights' window
    references)."""
    n, w, f = backtest_nights, backtest_windows, backtest_forecasts
    with transaction(bind) as conn:
        named = conn.execute(delete(n).where(n.c.backtest_date < before)).rowcount or 0
        for t in (backtest_series, backtest_scores):
            conn.execute(delete(t).where(t.c.backtest_date < before))
        orphan = ~exists().where(n.c.window_id == w.c.window_id)
        orphans = select(w.c.window_id).where(orphan)
        conn.execute(delete(f).where(f.c.window_id.in_(orphans)))
        conn.execute(delete(w).where(orphan))
        return int(named)
