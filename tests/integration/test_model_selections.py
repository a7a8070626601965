"""model_selections on SQLite and PostgreSQL: revision 0007 up from 0006 and back, the writer
(a rerun replaces its scope; bad records are refused before anything is written), and the
views latest_model_selections and forecast_choices on a small hand-made night."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from pipeline_lib.db import (
    create_schema,
    make_engine,
    migrate,
    model_selections,
    model_versions,
    start_run,
    upsert_model_version,
    write_forecasts,
    write_model_selections,
)
from pipeline_lib.db.engine import read_views_sql
from tests.integration.test_db import forecast_frame
from tests.integration.test_migrations import differences, revision

D1, D2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)
COMBO = "combo-0123456789ab"
LABEL = "mean(ets,linear,lstm)"
MEMBERS = {"ets": 1 / 3, "linear": 1 / 3, "lstm": 1 / 3}
MEMBER_VERSIONS = {"ets": "base-ets", "linear": "base-linear", "lstm": "v1"}
LONG_LABEL = "mean(seasonal_naive,linear,lstm,ets)"  # 36 characters: more than 0006 holds


def register_versions(engine: Engine) -> None:
    """The single models' versions and one combination of three of them."""
    upsert_model_version(engine, {"version": "v1", "kind": "full", "status": "champion"})
    for name in ("naive", "ets", "linear"):
        record = {"version": f"base-{name}", "kind": "baseline", "status": "baseline"}
        upsert_model_version(engine, record)
    upsert_model_version(
        engine,
        {
            "version": COMBO,
            "kind": "combination",
            "status": "combination",
            "hyperparameters": {"members": MEMBERS, "versions": MEMBER_VERSIONS},
        },
    )


def combination(
    forecast_date: dt.date = D1, series: str = "SP500", first: int = 1, last: int = 2
) -> dict[str, Any]:
    return {
        "forecast_date": forecast_date,
        "series_id": series,
        "horizon_from": first,
        "horizon_to": last,
        "model": LABEL,
        "model_version": COMBO,
        "rule": "dm_set",
        "weights": MEMBERS,
        "member_versions": MEMBER_VERSIONS,
        "evidence": {"mase": {"lstm": 0.91, "ets": 0.93, "linear": 0.95}, "windows": 20},
    }


def single(
    forecast_date: dt.date = D1,
    series: str = "SP500",
    first: int = 3,
    last: int = 3,
    name: str = "naive",
) -> dict[str, Any]:
    version = "v1" if name == "lstm" else f"base-{name}"
    return {
        "forecast_date": forecast_date,
        "series_id": series,
        "horizon_from": first,
        "horizon_to": last,
        "model": name,
        "model_version": version,
        "rule": "dm_set",
        "weights": {name: 1.0},
        "member_versions": {name: version},
        "evidence": None,
    }


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    create_schema(db_engine)
    for run in ("run-a", "run-b"):
        start_run(db_engine, run, "forecast", D1)
    register_versions(db_engine)
    return db_engine


def stored(engine: Engine) -> list[dict[str, Any]]:
    t = model_selections
    order = (t.c.forecast_date, t.c.series_id, t.c.horizon_from)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(*order))]


def keys(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (str(r["forecast_date"])[:10], r["series_id"], r["horizon_from"], r["horizon_to"])
        for r in rows
    ]


# --- the writer


def test_a_rerun_replaces_its_series_and_date_and_keeps_the_others(engine: Engine) -> None:
    first = [combination(), single(), single(series="WTI", first=1, last=3), single(D2)]
    assert write_model_selections(engine, first, "run-a") == 4
    # tonight's rerun of SP500 on D1 publishes one bucket for every horizon
    again = [single(first=1, last=3, name="lstm")]
    assert write_model_selections(engine, again, "run-b") == 1
    got = stored(engine)
    assert keys(got) == [
        ("2024-01-02", "SP500", 1, 3),
        ("2024-01-02", "WTI", 1, 3),
        ("2024-01-03", "SP500", 3, 3),
    ]
    assert [r["run_id"] for r in got] == ["run-b", "run-a", "run-a"]
    assert got[0]["model"] == "lstm" and got[0]["model_version"] == "v1"
    # the same records again change nothing but run and time
    write_model_selections(engine, again, "run-b")
    assert keys(stored(engine)) == keys(got)


def test_json_is_stored_with_sorted_keys_and_strict_numbers(engine: Engine) -> None:
    record = combination()
    record["evidence"] = {"windows": 20, "p": {"ets": float("nan")}, "mase": {"lstm": 0.9}}
    plain = single()
    del plain["evidence"]  # evidence may be left out
    write_model_selections(engine, [record, plain], "run-a")
    combo, one = stored(engine)
    assert combo["weights"] == json.dumps(MEMBERS, sort_keys=True)
    assert list(json.loads(combo["member_versions"])) == ["ets", "linear", "lstm"]
    assert combo["evidence"] == '{"mase": {"lstm": 0.9}, "p": {"ets": null}, "windows": 20}'
    assert json.loads(one["weights"]) == {"naive": 1.0} and one["evidence"] is None
    assert combo["created_at"] is not None and combo["rule"] == "dm_set"


def test_the_writes_join_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="later step failed"):
        with engine.begin() as conn:
            write_model_selections(conn, [combination(), single()], "run-a")
            raise RuntimeError("a later step failed")
    assert stored(engine) == []


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda r: r.__setitem__(key, value)


BAD_RECORDS = [
    (lambda r: r.pop("rule"), r"record 1: needs the keys .* missing \['rule'\]"),
    (_set("colour", "red"), r"record 1: .*unknown \['colour'\]"),
    (_set("horizon_to", 0), r"record 1 \('SP500', 2024-01-02, horizons 3..0\): horizon_from"),
    (_set("horizon_from", 0), "horizon_from must be at least 1"),
    (_set("horizon_from", "3"), "horizon_from must be an integer"),
    (_set("forecast_date", None), "forecast_date must not be null"),
    (_set("forecast_date", "yesterday"), "forecast_date is not a date"),
    (_set("model", "x" * 65), "model must be 1 to 64 characters"),
    (_set("rule", ""), "rule must be 1 to 16 characters"),
    (_set("weights", {}), "weights must be a non-empty dict"),
    (_set("weights", {"naive": 0.0}), r"weights\['naive'\] must be positive"),
    (_set("weights", {"naive": 1.5, "ets": -0.5}), r"weights\['ets'\] must be positive"),
    (_set("weights", {"naive": math.nan}), r"weights\['naive'\] must be positive"),
    (_set("weights", {"naive": "1"}), r"weights\['naive'\] must be a number"),
    (_set("weights", {"naive": 0.5, "ets": 0.4}), r"weights must sum to 1 .*not 0\.9"),
    (_set("member_versions", {"ets": "base-ets"}), "member_versions must name the models"),
    (_set("evidence", [1, 2]), "evidence must be a dict or None"),
    (_set("horizon_from", 2), r"buckets 1..2 and 2..3 of 'SP500' on 2024-01-02 overlap"),
]


def test_a_bad_record_is_refused_naming_it_and_nothing_is_written(engine: Engine) -> None:
    write_model_selections(engine, [single(D2)], "run-a")
    before = stored(engine)
    for spoil, message in BAD_RECORDS:  # one database for all: each case writes nothing
        bad = single()
        spoil(bad)
        with pytest.raises(ValueError, match=message):
            write_model_selections(engine, [combination(), bad], "run-b")
        assert stored(engine) == before, message


def test_weights_within_the_tolerance_and_touching_buckets_are_fine(engine: Engine) -> None:
    thirds = combination()
    thirds["weights"] = {"ets": 0.3333333, "linear": 0.3333333, "lstm": 0.3333333}
    assert write_model_selections(engine, [thirds, single()], "run-a") == 2


def test_unknown_runs_and_model_versions_are_refused(engine: Engine) -> None:
    with pytest.raises(LookupError, match=r"model_selections\.run_id: \['never-started'\]"):
        write_model_selections(engine, [single()], "never-started")
    ghost = single() | {"model_version": "combo-ffffffffffff"}
    with pytest.raises(LookupError, match=r"model_selections\.model_version.*combo-ffff"):
        write_model_selections(engine, [ghost], "run-a")
    assert stored(engine) == []


def test_model_versions_take_the_combination_kind_and_nothing_else_new(engine: Engine) -> None:
    with engine.connect() as conn:
        row = conn.execute(select(model_versions).where(model_versions.c.version == COMBO)).one()
    assert (row.kind, row.status) == ("combination", "combination")
    assert json.loads(row.hyperparameters) == {"members": MEMBERS, "versions": MEMBER_VERSIONS}
    with pytest.raises(ValueError, match="kind must be one of"):
        upsert_model_version(engine, {"version": "x", "kind": "ensemble", "status": "x"})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the CHECK constraint
        conn.execute(
            text(
                "INSERT INTO model_versions (version, kind, status, created_at) "
                "VALUES ('x', 'ensemble', 'x', CURRENT_TIMESTAMP)"
            )
        )


# --- the views


def night(engine: Engine) -> None:
    """SP500 on D1: a combination on horizons 1-2, naive on 3, and a 4th horizon no bucket
    holds; SP500 on D2: the LSTM on 1-3 (its newest night); WTI on D1: naive on 1-3."""
    sp500 = forecast_frame(D1, horizons=4).assign(
        model=[LABEL, LABEL, "naive", "naive"],
        model_version=[COMBO, COMBO, "base-naive", "base-naive"],
    )
    write_forecasts(engine, sp500, "run-a")
    write_forecasts(engine, forecast_frame(D2, horizons=3), "run-b")
    wti = forecast_frame(D1, horizons=3, series="WTI").assign(model_version="base-naive")
    write_forecasts(engine, wti.assign(model="naive"), "run-a")
    records = [combination(), single(), single(series="WTI", first=1, last=3)]
    write_model_selections(engine, records, "run-a")
    write_model_selections(engine, [single(D2, first=1, last=3, name="lstm")], "run-b")


def test_latest_model_selections_gives_each_series_its_newest_night(engine: Engine) -> None:
    night(engine)
    query = (
        "SELECT series_id, forecast_date, horizon_from, horizon_to, model, model_version, rule, "
        "weights FROM latest_model_selections ORDER BY series_id, horizon_from"
    )
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(text(query))]
    assert [(s, str(d)[:10], *rest[:5]) for s, d, *rest in got] == [
        ("SP500", "2024-01-03", 1, 3, "lstm", "v1", "dm_set"),
        ("WTI", "2024-01-02", 1, 3, "naive", "base-naive", "dm_set"),
    ]
    assert json.loads(got[0][-1]) == {"lstm": 1.0}


def test_forecast_choices_gives_every_forecast_the_choice_behind_it(engine: Engine) -> None:
    night(engine)
    query = (
        "SELECT series_id, forecast_date, target_date, horizon, yhat, yhat_lower, yhat_upper, "
        "model, model_version, rule, horizon_from, horizon_to, weights, evidence "
        "FROM forecast_choices WHERE series_id = 'SP500' AND forecast_date = :d "
        "ORDER BY horizon"
    )
    with engine.connect() as conn:
        got = [dict(r._mapping) for r in conn.execute(text(query), {"d": D1})]
        everything = conn.execute(text("SELECT COUNT(*) FROM forecast_choices")).scalar()
    assert everything == 4 + 3 + 3  # every forecasts row, once
    picked = [
        (r["horizon"], r["model"], r["model_version"], r["rule"], r["horizon_from"]) for r in got
    ]
    assert picked == [
        (1, LABEL, COMBO, "dm_set", 1),
        (2, LABEL, COMBO, "dm_set", 1),
        (3, "naive", "base-naive", "dm_set", 3),
        (4, "naive", "base-naive", None, None),  # no bucket holds horizon 4
    ]
    assert [r["yhat"] for r in got] == [101.0, 102.0, 103.0, 104.0]
    assert json.loads(got[0]["weights"]) == MEMBERS
    assert json.loads(got[0]["evidence"])["windows"] == 20
    assert got[2]["evidence"] is None and got[0]["horizon_to"] == 2
    assert str(got[0]["target_date"])[:10] == "2024-01-03"


# --- revision 0007, up from 0006 and back


def alembic(engine: Engine, action: str, target: str, drop_views: bool = False) -> None:
    """Run Alembic as `db upgrade` does: one transaction, SQLite foreign keys off while
    tables are copied; ``drop_views`` first (a downgrade must, as the views read the tables)."""
    migration = make_engine(engine.url, foreign_keys=False)
    try:
        with migration.begin() as conn:
            if drop_views:
                for name in reversed(migrate.view_names(read_views_sql())):
                    conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
            migrate._alembic(conn, action, target)
    finally:
        migration.dispose()


def model_column(engine: Engine, table: str) -> dict[str, Any]:
    (column,) = [c for c in inspect(engine).get_columns(table) if c["name"] == "model"]
    return column


def kind_check(engine: Engine) -> str:
    (check,) = inspect(engine).get_check_constraints("model_versions")
    return check["sqltext"]


def test_0007_upgrades_a_0006_database_with_its_rows_and_downgrades_again(
    db_engine: Engine,
) -> None:
    engine = db_engine
    alembic(engine, "upgrade", "0006")
    with engine.begin() as conn:
        for statement in (
            "INSERT INTO pipeline_runs (run_id, flow, as_of, status, started_at) "
            "VALUES ('r1', 'forecast', '2024-01-02', 'succeeded', CURRENT_TIMESTAMP)",
            "INSERT INTO model_versions (version, kind, status, created_at) "
            "VALUES ('base-naive', 'baseline', 'baseline', CURRENT_TIMESTAMP)",
            "INSERT INTO forecasts (series_id, forecast_date, target_date, horizon, yhat, model, "
            "model_version, run_id, created_at) VALUES ('SP500', '2024-01-02', '2024-01-03', 1, "
            "4700.5, 'naive', 'base-naive', 'r1', CURRENT_TIMESTAMP)",
        ):
            conn.execute(text(statement))
    assert model_column(engine, "forecasts")["type"].length == 32
    result = migrate.upgrade(engine)
    assert (result.from_revision, result.to_revision) == ("0006", "0009")
    assert differences(engine) == []
    assert model_column(engine, "forecasts")["type"].length == 64
    assert model_column(engine, "backtest_windows")["type"].length == 64
    with engine.connect() as conn:
        row = conn.execute(text("SELECT model, model_version, yhat FROM forecasts")).one()
        choice = conn.execute(text("SELECT rule FROM forecast_choices")).one()
    assert tuple(row) == ("naive", "base-naive", 4700.5) and choice.rule is None

    # a night with a combination: 0006 cannot hold its forecasts, so the downgrade refuses
    start_run(engine, "r2", "forecast", D2)
    register_versions(engine)
    unused = "combo-ffffffffffff"  # registered, then not published
    upsert_model_version(engine, {"version": unused, "kind": "combination", "status": "x"})
    frame = forecast_frame(D2, horizons=2).assign(model=[LABEL, LONG_LABEL], model_version=COMBO)
    write_forecasts(engine, frame, "r2")
    write_model_selections(engine, [combination(D2)], "r2")
    with pytest.raises(
        RuntimeError, match=r"forecasts rows refer to the combination versions"
    ) as e:
        alembic(engine, "downgrade", "0006", drop_views=True)
    assert COMBO in str(e.value) and LONG_LABEL in str(e.value) and unused not in str(e.value)
    assert revision(engine) == "0009"  # nothing changed, the views included
    assert {"model_selections"} <= set(inspect(engine).get_table_names())
    assert "forecast_choices" in inspect(engine).get_view_names()

    with engine.begin() as conn:  # the DBA's way out: those forecasts go
        conn.execute(text("DELETE FROM forecasts WHERE model_version = :v"), {"v": COMBO})
    alembic(engine, "downgrade", "0006", drop_views=True)
    assert revision(engine) == "0006"
    assert "model_selections" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version, kind FROM model_versions ORDER BY 1"))
        assert [tuple(r) for r in versions] == [
            ("base-ets", "baseline"),
            ("base-linear", "baseline"),
            ("base-naive", "baseline"),
            ("v1", "full"),
        ]
        assert conn.execute(text("SELECT model FROM forecasts")).scalars().all() == ["naive"]
    assert "combination" not in kind_check(engine)
    for table in ("forecasts", "backtest_results"):
        column = model_column(engine, table)
        assert column["type"].length == 32
        if engine.dialect.name == "postgresql":
            assert "combination" not in column["comment"]

    # and up again, to what the metadata says
    migrate.upgrade(engine)
    assert revision(engine) == "0009" and differences(engine) == []
    assert "combination" in kind_check(engine)


def test_a_label_longer_than_0006_holds_stops_the_downgrade(db_engine: Engine) -> None:
    create_schema(db_engine)
    start_run(db_engine, "r1", "forecast", D1)
    register_versions(db_engine)
    frame = forecast_frame(D1, horizons=1).assign(model=LONG_LABEL, model_version="v1")
    write_forecasts(db_engine, frame, "r1")
    with pytest.raises(RuntimeError, match=r"forecasts\.model holds labels longer than 32"):
        alembic(db_engine, "downgrade", "0006", drop_views=True)
    assert revision(db_engine) == "0009"
