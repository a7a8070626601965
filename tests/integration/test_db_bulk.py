"""Set-based writes and the aggregated backtest read, on SQLite and PostgreSQL.

SQLite's row path sends tuples straight to the driver: the stored text must be what
SQLAlchemy's own per-row binding stores. Scoped deletes take one statement per leading key and
batch of scopes; the decay's backtest summary, aggregated in SQL, must equal the summary
``pipeline_lib.monitoring.decay`` computes from every row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import Engine, func, select, text

from pipeline_lib import db
from pipeline_lib.db import values as v
from pipeline_lib.db.backtests import window_ids
from pipeline_lib.db.frames import to_arrow
from pipeline_lib.db.readers import BACKTEST_SUMMARY_FIELDS
from pipeline_lib.db.upsert import SCOPE_BATCH, _driver_values, replace_rows, upsert_table
from pipeline_lib.monitoring.decay import BACKTEST_SUMMARY_COLUMNS, backtest_summary, decay_metrics

D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """The schema, run ``run-a`` and the model versions the rows refer to."""
    db.create_schema(db_engine)
    db.start_run(db_engine, "run-a", "nightly", D1)
    for version in ("v1", "v2", "baseline-naive"):
        db.upsert_model_version(db_engine, {"version": version, "kind": "full", "status": "x"})
    return db_engine


def backtest_frame(series: list[str], origins: int = 3, horizons: int = 2) -> pd.DataFrame:
    """Backtest rows of two LSTM versions (one model, ``lstm``) and naive, as
    ``score_backtest`` gives them (``scaled_error`` is ``abs_error`` over the series'
    ``mase_scale``), awkward values included: zero errors, NaN bounds, and a series ``Z0``
    whose scale is zero (its scaled errors missing)."""
    rng = np.random.default_rng(7)
    rows = []
    for sid in series:
        scale = 0.0 if sid == "Z0" else 2.0
        for o in range(origins):
            origin = pd.Timestamp("2023-12-01") + pd.Timedelta(days=o)
            for h in range(1, horizons + 1):
                for model, version in (("lstm", "v1"), ("lstm", "v2"), ("naive", "baseline-naive")):
                    error = float(rng.gamma(2.0, 1.0))
                    rows.append(
                        {
                            "series_id": sid,
                            "forecast_date": origin,
                            "target_date": origin + pd.Timedelta(days=h),
                            "horizon": h,
                            "model": model,
                            "model_version": version,
                            "yhat": 100.0 + error,
                            "yhat_lower": np.nan if h == 1 else 95.0,
                            "yhat_upper": 105.0,
                            "actual": 100.0,
                            "abs_error": error,
                            "squared_error": error**2,
                            "smape": 1.0,
                            "pinball_lower": 0.1,
                            "pinball_median": 0.2,
                            "pinball_upper": 0.3,
                            "covered": bool(o % 2),
                            "mase_scale": scale,
                        }
                    )
    frame = pd.DataFrame(rows)
    frame.loc[frame.index[3 : len(frame) : 13], "abs_error"] = 0.0
    return with_scaled_errors(frame)


def with_scaled_errors(frame: pd.DataFrame) -> pd.DataFrame:
    """``scaled_error`` as ``pipeline_lib.evaluation.metrics`` computes it."""
    scale = frame["mase_scale"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(scale > 0, frame["abs_error"].to_numpy() / scale, np.nan)
    return frame.assign(scaled_error=scaled)


def raw_rows(engine: Engine, table: str, where: str) -> list[tuple[Any, ...]]:
    """Every stored value as the database holds it (SQLite: with its storage class)."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        names = [c.name for c in db.metadata.tables[table].columns]
        cols = ", ".join(f"typeof({c}), {c}" if sqlite else c for c in names)
        query = f"SELECT {cols} FROM {table} WHERE {where} ORDER BY {', '.join(names[:5])}"
        return [tuple(r) for r in conn.execute(text(query))]


def test_sqlite_tuples_store_what_sqlalchemy_binding_stores(engine: Engine) -> None:
    """The driver path writes the same text, numbers and NULLs as ``conn.execute(insert(),
    dicts)``, which SQLite took before (and PostgreSQL's row path still takes)."""
    frame = backtest_frame(["A"])
    stamp = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    constants = {"run_id": "run-a", "created_at": stamp}
    windows = frame.drop_duplicates(["model_version", "forecast_date"])
    for first in (1, 1001):  # two copies of the windows: ids 1.. and 1001..
        numbered = windows.assign(window_id=range(first, first + len(windows)))
        upsert_table(
            engine, db.backtest_windows, to_arrow(db.backtest_windows, numbered, constants)
        )
    ids = frame.groupby(["model_version", "forecast_date"], sort=False).ngroup()
    by_sqlalchemy = to_arrow(db.backtest_forecasts, frame.assign(window_id=ids + 1))
    by_driver = to_arrow(db.backtest_forecasts, frame.assign(window_id=ids + 1001))
    with engine.begin() as conn:  # the reference: SQLAlchemy's bind processing, row by row
        conn.execute(db.backtest_forecasts.insert(), by_sqlalchemy.to_pylist())
    replace_rows(engine, db.backtest_forecasts, by_driver, ["window_id"], bulk_rows=10**9)
    written = raw_rows(engine, "backtest_forecasts", "window_id > 1000")
    reference = raw_rows(engine, "backtest_forecasts", "window_id <= 1000")
    id_at = 1 if engine.dialect.name == "sqlite" else 0  # after its typeof on SQLite
    assert [r[id_at] - 1000 for r in written] == [r[id_at] for r in reference]
    assert [r[id_at + 1 :] for r in written] == [r[id_at + 1 :] for r in reference]
    assert len(written) == len(frame)
    if engine.dialect.name == "sqlite":
        types = {r[i] for r in written for i in range(0, len(r), 2)}
        assert types == {"text", "integer", "real", "null"}
        stored = raw_rows(engine, "backtest_windows", "window_id > 1000")
        assert stored[0][-1] == "2024-01-02 03:04:05.000006"  # SQLAlchemy's DATETIME text
    # the writer, and the read path, give back the same Python values
    db.write_backtest_results(engine, frame, "run-a", D3)
    stored = db.read_latest_backtest(engine, ["A"], D3 + dt.timedelta(days=1))
    assert set(stored["backtest_date"]) == {D3} and len(stored) == len(frame)
    assert stored["covered"].map(type).eq(bool).all()
    keys = ["model_version", "forecast_date", "target_date"]
    got = stored.sort_values(keys, ignore_index=True)
    want = frame.sort_values(keys, ignore_index=True)
    for column in ("yhat", "yhat_lower", "abs_error", "scaled_error", "covered"):
        np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy())


def test_driver_values_render_each_distinct_value_once_and_keep_nulls() -> None:
    """Text, dates and timestamps reach the driver as one object per distinct value, in row
    order, with nulls as None; an empty column gives no values."""
    words = _driver_values(pa.array(["b", None, "a", "b", "b"]))
    assert words == ["b", None, "a", "b", "b"]
    assert words[0] is words[3] is words[4]  # one object for the three rows of "b"
    days = _driver_values(pa.array([D2, D1, None, D2], pa.date32()))
    assert days == ["2024-01-03", "2024-01-02", None, "2024-01-03"]
    stamp = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    stamps = _driver_values(pa.array([stamp, None], pa.timestamp("us", tz="UTC")))
    assert stamps == ["2024-01-02 03:04:05.000006", None]
    assert _driver_values(pa.array([], pa.string())) == []
    assert _driver_values(pa.array([True, None, False])) == [1, None, 0]


def test_a_constant_is_converted_once_and_checked() -> None:
    """A constant column (run id, created_at, the backtest date) is every row's value, and a
    constant that does not convert is refused with its column named, rows or not."""
    frame = pd.DataFrame({"series_id": ["A", "B", "C"], "mase_scale": [1.0, 2.0, 0.5]})
    constants = {"run_id": "run-a", "created_at": v.utcnow(), "backtest_date": D1}
    table = to_arrow(db.backtest_series, frame, constants)
    assert table["backtest_date"].to_pylist() == [D1] * len(frame)
    assert table["run_id"].to_pylist() == ["run-a"] * len(frame)
    for rows in (frame, frame.iloc[:0]):
        with pytest.raises(ValueError, match="backtest_series.backtest_date"):
            to_arrow(db.backtest_series, rows, constants | {"backtest_date": "not a day"})


def test_actuals_upsert_on_the_driver_path_restates_and_orders(engine: Engine) -> None:
    days = pd.date_range("2024-01-01", periods=6, freq="D")
    first = pd.DataFrame({"series_id": "B", "target_date": days, "actual": np.arange(6.0)})
    db.write_actuals(engine, first.iloc[::-1], "run-a", bulk_rows=10**9)  # out of key order
    restated = first.iloc[4:].assign(actual=[40.0, 50.0])
    db.write_actuals(engine, pd.concat([restated, first.iloc[:1]]), "run-a", bulk_rows=10**9)
    with engine.connect() as conn:
        t = db.actuals
        got = conn.execute(select(t.c.target_date, t.c.actual).order_by(t.c.target_date)).all()
    assert [a for _, a in got] == [0.0, 1.0, 2.0, 3.0, 40.0, 50.0]
    assert [d for d, _ in got] == [d.date() for d in days]


def test_scoped_replaces_span_many_scopes_and_leave_others(engine: Engine) -> None:
    """More scopes than one DELETE takes: every replaced scope loses its stale rows, the rows
    of other scopes stay."""
    many = [f"S{i:04d}" for i in range(SCOPE_BATCH * 2 + 7)]
    frame = backtest_frame(many, origins=1, horizons=1)
    assert db.write_backtest_results(engine, frame, "run-a", D1, series_ids=many) == len(frame)
    db.write_backtest_results(engine, backtest_frame(["KEEP"]), "run-a", D1, series_ids=["KEEP"])
    # a rerun of the night with one horizon less, a series gone: none of its old rows remain
    rerun = backtest_frame(many[1:], origins=1, horizons=1).query("model == 'naive'")
    db.write_backtest_results(engine, rerun, "run-a", D1, series_ids=many)
    # forecasts: scopes (series, forecast date), several dates per series, across batches
    dates = [D1 + dt.timedelta(days=i) for i in range(SCOPE_BATCH + 3)]
    forecasts = pd.DataFrame(
        [
            {"series_id": s, "forecast_date": d, "target_date": d + dt.timedelta(days=h)}
            | {"horizon": h, "yhat": 1.0, "model_version": "v1"}
            for s in ("A", "B")
            for d in dates
            for h in (1, 2)
        ]
    )
    db.write_forecasts(engine, forecasts, "run-a", bulk_rows=10**9)
    db.write_forecasts(engine, forecasts.query("horizon == 1"), "run-a", bulk_rows=10**9)
    with engine.connect() as conn:
        t = db.backtest_results
        counts = dict(
            conn.execute(select(t.c.series_id, func.count()).group_by(t.c.series_id)).all()
        )
        f = db.forecasts
        horizons = set(conn.execute(select(f.c.horizon).distinct()).scalars())
        n_forecasts = conn.execute(select(func.count()).select_from(f)).scalar_one()
    assert many[0] not in counts
    assert all(counts[s] == 1 for s in many[1:])
    assert counts["KEEP"] == len(backtest_frame(["KEEP"]))
    # the night's scores follow its rows: the series gone has none, the others the rerun's
    scores = db.read_backtest_summary(engine, [*many, "KEEP"], D1 + dt.timedelta(days=1))
    rows = db.read_latest_backtest(engine, [*many, "KEEP"], D1 + dt.timedelta(days=1))
    pd.testing.assert_frame_equal(scores, backtest_summary(rows), rtol=1e-12)
    assert many[0] not in set(scores["series_id"]) and set(scores["model"]) == {"naive", "lstm"}
    assert horizons == {1} and n_forecasts == 2 * len(dates)


def test_the_backtest_scores_stored_with_the_night_equal_decay_summary_of_its_rows(
    engine: Engine,
) -> None:
    series = ["A", "B", "C"]
    older = with_scaled_errors(backtest_frame(series).assign(mase_scale=2.0 / 3))
    db.write_backtest_results(engine, older, "run-a", D1)
    newest = backtest_frame(series)
    newest.loc[newest["series_id"] == "C", "mase_scale"] = np.nan  # C: no scale
    newest = with_scaled_errors(newest)
    db.write_backtest_results(engine, newest, "run-a", D2)
    assert BACKTEST_SUMMARY_FIELDS == BACKTEST_SUMMARY_COLUMNS

    for before, since, expected in ((D3, None, newest), (D2, None, older), (D3, D1, newest)):
        summary = db.read_backtest_summary(engine, ["A", "C"], before, since)
        rows = db.read_latest_backtest(engine, ["A", "C"], before, since)
        reference = backtest_summary(rows)
        assert len(rows) == len(expected.query("series_id in ['A', 'C']"))
        assert list(summary.columns) == BACKTEST_SUMMARY_COLUMNS
        assert summary["horizon"].dtype == np.int64
        pd.testing.assert_frame_equal(summary, reference, check_exact=False, rtol=1e-12)
    c = summary.loc[summary["series_id"] == "C"]
    assert c["backtest_mase"].isna().all() and c["scale_scaled_error"].isna().all()

    # no backtest in range: empty, with the columns
    assert db.read_backtest_summary(engine, ["A"], D1).empty
    assert db.read_backtest_summary(engine, ["A"], D2, since=D2).empty
    assert list(db.read_backtest_summary(engine, ["A"], D1).columns) == BACKTEST_SUMMARY_FIELDS

    # the decay rows from the summary are the rows from every backtest row
    live = live_errors(["A", "C"], as_of=D3)
    from_rows = decay_metrics(live, rows, D3, window_days=60, min_realised=5)
    from_sql = decay_metrics(live, summary, D3, window_days=60, min_realised=5)
    assert "mase_ratio" in set(from_rows["metric"])
    pd.testing.assert_frame_equal(from_sql, from_rows, check_exact=False, rtol=1e-12)


def live_errors(series: list[str], as_of: dt.date) -> pd.DataFrame:
    """Realised forecasts of lstm (horizon 1) and naive (horizon 2), 20 target dates each."""
    rng = np.random.default_rng(3)
    rows = []
    for sid in series:
        for i in range(20):
            for h, model in ((1, "lstm"), (2, "naive")):
                yhat = 100.0 + float(rng.normal())
                rows.append(
                    (sid, as_of - dt.timedelta(days=i), h, model, yhat, 100.0, yhat - 1, yhat + 1)
                )
    columns = ["series_id", "target_date", "horizon", "model", "yhat", "actual"]
    return pd.DataFrame(rows, columns=[*columns, "yhat_lower", "yhat_upper"])


def test_created_at_is_one_utc_text_per_write(engine: Engine) -> None:
    """Timestamps are formatted once per distinct value on the driver path: every row of a
    write carries the write's time."""
    before = v.utcnow()
    db.write_backtest_results(engine, backtest_frame(["A"]), "run-a", D1)
    with engine.connect() as conn:
        stamps = conn.execute(select(db.backtest_results.c.created_at).distinct()).scalars().all()
    assert len(stamps) == 1
    stamp = pd.Timestamp(stamps[0])
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp  # SQLite: naive UTC
    assert before - dt.timedelta(seconds=1) <= stamp.to_pydatetime() <= v.utcnow()


def test_backtests_before_a_date_are_pruned_and_the_later_kept(engine: Engine) -> None:
    """The nights before the date go, and the windows only they named; a window a later
    night names too stays."""
    frame = backtest_frame(["A"])
    revised = frame.assign(
        actual=frame["actual"] + (frame["forecast_date"] == frame["forecast_date"].max())
    )
    for day, rows in ((D1, revised), (D2, frame), (D3, frame)):
        db.write_backtest_results(engine, rows, "run-a", day)
    n_windows = frame.groupby(["model_version", "forecast_date"]).ngroups
    assert stored_count(engine, db.backtest_windows) == n_windows + 3  # 3 revised windows
    assert db.prune_backtest_results(engine, D2) == n_windows  # D1 named that many
    with engine.connect() as conn:
        t = db.backtest_results
        kept = set(conn.execute(select(t.c.backtest_date).distinct()).scalars())
    assert kept == {D2, D3}
    assert stored_count(engine, db.backtest_windows) == n_windows
    assert stored_count(engine, db.backtest_forecasts) == len(frame)
    with engine.connect() as conn:  # the pruned night's scores go with it
        t = db.backtest_scores
        scored = set(conn.execute(select(t.c.backtest_date).distinct()).scalars())
    assert scored == {D2, D3}
    assert db.prune_backtest_results(engine, D2) == 0


def stored_count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_window_is_written_once_and_each_night_reads_its_own_rows(engine: Engine) -> None:
    """Two nights scoring the same windows store them once; a window whose actual was revised
    is another window, and the night that scored the first one still reads its rows."""
    frame = backtest_frame(["A", "B"])
    db.write_backtest_results(engine, frame, "run-a", D1)
    windows = stored_count(engine, db.backtest_windows)
    rows = stored_count(engine, db.backtest_forecasts)
    assert (windows, rows) == (
        frame.groupby(["series_id", "model_version", "forecast_date"]).ngroups,
        len(frame),
    )
    # the next night: the same windows, one of them with a revised actual, one new version
    revised = frame.copy()
    one = (revised["series_id"] == "A") & (
        revised["forecast_date"] == revised["forecast_date"].min()
    )
    one &= revised["model_version"] == "baseline-naive"
    revised.loc[one, "actual"] = 101.0
    db.write_backtest_results(engine, revised, "run-a", D2)
    assert stored_count(engine, db.backtest_windows) == windows + 1
    assert stored_count(engine, db.backtest_forecasts) == rows + int(one.sum())
    first = db.read_latest_backtest(engine, ["A", "B"], D2)
    second = db.read_latest_backtest(engine, ["A", "B"], D3)
    keys = ["series_id", "model_version", "forecast_date", "target_date"]
    for stored, written in ((first, frame), (second, revised)):
        got = stored.sort_values(keys, ignore_index=True)
        want = written.sort_values(keys, ignore_index=True)
        np.testing.assert_array_equal(got["actual"].to_numpy(), want["actual"].to_numpy())
        assert got["run_id"].eq("run-a").all()
    # a rerun of a night stores nothing new
    db.write_backtest_results(engine, revised, "run-a", D2)
    assert stored_count(engine, db.backtest_windows) == windows + 1


def test_window_ids_follow_the_rows_not_their_order_or_types() -> None:
    """The same windows in another row order, with dates as ``datetime.date`` and the
    categories as categoricals, get the same ids; any changed value gives another id."""
    frame = backtest_frame(["A", "B"])
    ids = pd.Series(window_ids(frame), index=frame.index)
    shuffled = frame.sample(frac=1.0, random_state=1)
    shuffled = shuffled.assign(
        forecast_date=shuffled["forecast_date"].dt.date,
        target_date=shuffled["target_date"].dt.date,
        series_id=shuffled["series_id"].astype("category"),
    )
    again = pd.Series(window_ids(shuffled), index=shuffled.index)
    pd.testing.assert_series_equal(again.sort_index(), ids)
    assert ids.nunique() == frame.groupby(["series_id", "model_version", "forecast_date"]).ngroups
    assert (ids >= 0).all()
    changed = frame.copy()
    changed.loc[changed.index[0], "yhat_upper"] += 1e-9
    moved = window_ids(changed)
    same_window = ids == ids.iloc[0]
    assert (moved[same_window.to_numpy()] != ids.iloc[0]).all()
    assert (moved[~same_window.to_numpy()] == ids[~same_window]).all()


def test_backtest_rows_without_their_scale_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="mase_scale"):
        db.write_backtest_results(
            engine, backtest_frame(["A"]).drop(columns="mase_scale"), "run-a", D1
        )


def test_a_backtest_written_in_slices_of_whole_series_equals_one_write(engine: Engine) -> None:
    """Slices of a few rows (each series whole) store what one slice stores; a key repeated
    within a series is still named, and the failed write leaves the night's earlier rows."""
    series = ["A", "B", "C", "D", "E"]
    frame = backtest_frame(series).sample(frac=1.0, random_state=3)  # series interleaved
    assert db.write_backtest_results(engine, frame, "run-a", D1, slice_rows=5) == len(frame)
    sliced = db.read_latest_backtest(engine, series, D2)
    db.write_backtest_results(engine, frame, "run-a", D1)  # one slice, replacing the night
    whole = db.read_latest_backtest(engine, series, D2)
    keys = ["series_id", "model_version", "forecast_date", "target_date"]
    pd.testing.assert_frame_equal(
        sliced.drop(columns="created_at").sort_values(keys, ignore_index=True),
        whole.drop(columns="created_at").sort_values(keys, ignore_index=True),
    )
    repeated = pd.concat([frame, frame.loc[frame["series_id"] == "D"].head(1)])
    with pytest.raises(ValueError, match="backtest_forecasts"):
        db.write_backtest_results(engine, repeated, "run-a", D1, slice_rows=5)
    assert len(db.read_latest_backtest(engine, series, D2)) == len(frame)


def test_a_window_id_stored_for_another_key_stops_the_write(engine: Engine) -> None:
    """A digest that names another window's key (a collision) is refused with both keys, and
    the night writes nothing."""
    frame = backtest_frame(["A"])
    taken = int(window_ids(frame)[0])
    other = frame.iloc[:1].assign(series_id="B", window_id=taken)
    stamp = {"run_id": "run-a", "created_at": v.utcnow()}
    upsert_table(engine, db.backtest_windows, to_arrow(db.backtest_windows, other, stamp))
    with pytest.raises(RuntimeError, match=rf"window id {taken} is stored for .*'B'"):
        db.write_backtest_results(engine, frame, "run-a", D1)
    assert stored_count(engine, db.backtest_nights) == 0
    assert stored_count(engine, db.backtest_windows) == 1
