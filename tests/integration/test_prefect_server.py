"""The deployments on a real Prefect server, run by a real process worker, on PostgreSQL.

A ``prefect server start`` on loopback with a home folder and a database of its own;
``forecast-pipeline deploy`` creates the work pool, the concurrency limit and the deployments of
deploy/prefect.yaml; a process worker runs the flow runs. A backfill is started through the API
the way the UI's "Custom run" form does it (the deployment and JSON parameters), and its rows,
run records and artifacts are checked. Then two backfills over overlapping dates are started
together, so that both are Running at the same moment: the global concurrency limit must make
one wait until the other is done, and every forecast date must end up holding the complete rows
of one run, with one champion in model_versions. The server's scheduler must have created the
nightly's scheduled runs at the configured cron and time zone. Everything is stopped at the end
and no process may be left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.sorting import LogSort
from prefect.exceptions import PrefectHTTPStatusError
from sqlalchemy import create_engine

from tests.conftest import for_prefect_server, pg_database
from tests.e2e.conftest import write_config
from tests.prefect_server import PrefectServer, tail, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
SERIES = ["MSFT", "NASDAQ", "SP500", "WTI"]
H = 7
POOL = "forecast-pool"
LIMIT = "forecast-pipeline"
FLOW_RUN_TIMEOUT = 300  # seconds; a 3-date backfill runs for about 45 s on 2 cores
# Schedules that never fire while the test runs (the worker must only see the backfills); the
# deployments must carry them, and the server's scheduler must create their runs.
NIGHTLY_CRON, RETRAIN_CRON, TIMEZONE = "30 6 1 1 *", "0 4 1 1 *", "Europe/London"
ORCHESTRATION = f"""
[orchestration]
nightly_cron = "{NIGHTLY_CRON}"
retrain_cron = "{RETRAIN_CRON}"
timezone = "{TIMEZONE}"
slot_check_seconds = 1
"""
WAITED = re.compile(
    r"holds the 'forecast-pipeline' slot and the writer lease \(waited ([0-9.]+) s\)"
)
# What the Prefect server logs when its scheduler cannot insert runs (SQLAlchemy 2.1).
SCHEDULER_BUG = "Can't evaluate bulk DML statement"


@pytest.fixture
def prefect_database(pg_admin_url: str) -> Iterator[str]:
    """A throw-away PostgreSQL database for the Prefect server itself (on its default SQLite
    file, its clients back off for seconds now and then: ``for_prefect_server``)."""
    with pg_database(pg_admin_url) as url:
        yield for_prefect_server(url)


@pytest.fixture
def prefect_server(tmp_path: Path, prefect_database: str) -> Iterator[PrefectServer]:
    """A Prefect server on 127.0.0.1 (free port) with its own PREFECT_HOME and database;
    stopped, with its workers, at the end of the test whatever happened."""
    server = PrefectServer(
        home=tmp_path / "prefect-home",
        logs=tmp_path / "logs",
        database_url=prefect_database,
        server_env={
            # A run waiting for the pipeline's slot asks again after this many seconds at most
            # (Prefect's default, 30, only makes the test slower).
            "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
        },
    )
    try:
        server.start()
        yield server
    finally:
        left = server.stop()  # nothing after a passing test, which stops it itself
    assert not left, f"left running after the test: {left}"


def _diagnose(server: PrefectServer, client: Any, run_id: UUID) -> str:
    logs = "\n".join(_logs(client, run_id)[-60:])
    worker = tail(server.workers[0].log, 60) if server.workers else ""
    return f"flow run logs:\n{logs}\n--- worker log:\n{worker}"


def _logs(client: Any, run_id: UUID) -> list[str]:
    """The logger names and messages of a flow run (its own and its tasks' logs), oldest
    first."""
    found: list[Any] = []
    while True:
        page = client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
            limit=200,
            offset=len(found),
            sort=LogSort.TIMESTAMP_ASC,
        )
        found += page
        if len(page) < 200:
            return [f"{log.timestamp.isoformat()} {log.name} {log.message}" for log in found]


def _finished(server: PrefectServer, client: Any, run_id: UUID) -> Any:
    """Wait for a flow run's final state; it must be Completed."""
    try:
        run = wait_until(
            lambda: (r := client.read_flow_run(run_id)).state.is_final() and r or None,
            FLOW_RUN_TIMEOUT,
            f"flow run {run_id} to finish",
            interval=1.0,
        )
    except TimeoutError as exc:
        pytest.fail(f"{exc}\n{_diagnose(server, client, run_id)}", pytrace=False)
    if not run.state.is_completed():
        pytest.fail(f"flow run {run.name}: {run.state}\n{_diagnose(server, client, run_id)}")
    return run


def _backfill(client: Any, deployment_id: UUID, start: str, end: str) -> Any:
    """A backfill run as the UI's "Custom run" creates it: the deployment and its parameters
    as JSON (dates as ISO strings), validated by the server against the deployment's schema.
    Chunks of 2 days (each starting with a full training), 2 at a time."""
    return client.create_flow_run_from_deployment(
        deployment_id,
        parameters={
            "start": start,
            "end": end,
            "retrain_every_days": 2,
            "parallel_chunks": 2,
        },
    )


def _tables(url: str) -> dict[str, pd.DataFrame]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = {
                name: pd.read_sql_table(name, conn)
                for name in ("forecasts", "pipeline_runs", "drift_metrics", "model_versions")
            }
    finally:
        engine.dispose()
    runs = tables["pipeline_runs"]
    details = runs["details"].map(lambda d: json.loads(d or "{}"))
    runs["parent"] = details.map(lambda d: d.get("parent_run_id"))
    # the run whose rows stand: itself, or the run it answered from (pipeline_lib.running.rerun)
    reused = details.map(lambda d: d.get("reused", {}).get("run_id"))
    runs["wrote"] = reused.where(reused.notna(), runs["run_id"])
    runs["as_of"] = pd.to_datetime(runs["as_of"]).dt.date
    for name in ("forecasts", "drift_metrics"):
        tables[name]["forecast_date"] = pd.to_datetime(tables[name]["forecast_date"]).dt.date
    return tables


def _stage_runs(runs: pd.DataFrame, backfill_id: UUID, dates: list[dt.date]) -> pd.DataFrame:
    """The ingest and forecast subflow runs of one backfill: all succeeded, one forecast run
    per date; returns them."""
    mine = runs[runs["parent"] == str(backfill_id)]
    assert sorted(mine["flow"]) == ["forecast"] * len(dates) + ["ingest"], mine
    assert (mine["status"] == "succeeded").all(), mine[["flow", "as_of", "status", "message"]]
    assert mine["finished_at"].notna().all()
    assert sorted(mine.loc[mine["flow"] == "forecast", "as_of"]) == dates
    return mine


def _forecast_owners(stages: pd.DataFrame) -> dict[dt.date, str]:
    """Forecast date -> run id of the forecast subflow run that wrote it (the run's own, or
    that of the earlier run it answered from when nothing had changed since)."""
    forecast = stages[stages["flow"] == "forecast"]
    return dict(zip(forecast["as_of"], forecast["wrote"], strict=True))


def _check_forecasts(tables: dict[str, pd.DataFrame], owners: dict[dt.date, str]) -> None:
    """Exactly the dates of ``owners``; per date, every series with horizons 1..H, all written
    by the run that owns the date (so never a mix of two runs), and its drift rows too."""
    fc = tables["forecasts"]
    assert not fc.duplicated(["series_id", "forecast_date", "target_date"]).any()
    assert set(fc["forecast_date"]) == set(owners)
    assert len(fc) == len(owners) * len(SERIES) * H
    for (series, day), rows in fc.groupby(["series_id", "forecast_date"]):
        assert sorted(rows["horizon"]) == list(range(1, H + 1)), (series, day)
        assert set(rows["run_id"]) == {owners[day]}, (series, day, set(rows["run_id"]))
        assert (pd.to_datetime(rows["target_date"]).dt.date > day).all()
    assert sorted(fc["series_id"].unique()) == SERIES
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    drift = tables["drift_metrics"]
    for day, rows in drift.groupby("forecast_date"):
        assert set(rows["run_id"]) == {owners[day]}, (day, set(rows["run_id"]))


def _artifacts(client: Any, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Run id -> artifact key -> artifact, for these flow runs."""
    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(r) for r in run_ids])
        )
    )
    out: dict[str, dict[str, Any]] = {r: {} for r in run_ids}
    for artifact in found:
        out[str(artifact.flow_run_id)][artifact.key] = artifact
    return out


def _slot_waits(lines: list[str]) -> list[float]:
    return [float(m.group(1)) for line in lines if (m := WAITED.search(line))]


def _log_time(line: str) -> dt.datetime:
    return dt.datetime.fromisoformat(line.split(" ", 1)[0])


def test_backfills_on_a_prefect_server_with_a_process_worker(
    pg_url: str, prefect_server: PrefectServer, tmp_path: Path
) -> None:
    # (pg_url first: PostgreSQL is checked before the server starts, and dropped after it stops)
    server = prefect_server
    config = write_config(tmp_path / "pipeline.toml", tmp_path / "data", extra=ORCHESTRATION)
    config.write_text(f'database_url = "{pg_url}"\n' + config.read_text())  # a top-level key

    # 1. forecast-pipeline deploy: work pool, concurrency limit, the three deployments
    server.deploy_pipeline(config, tmp_path)
    with server.client() as client:
        pool = client.read_work_pool(POOL)
        assert pool.type == "process"
        limit = client.read_global_concurrency_limit_by_name(LIMIT)
        assert (limit.limit, limit.active) == (1, True)
        deployments = {
            name: client.read_deployment_by_name(name)
            for name in ("nightly/nightly", "nightly/retrain", "backfill/backfill")
        }
        for name, deployment in deployments.items():
            assert deployment.work_pool_name == POOL, name
            steps = deployment.pull_steps or []
            assert steps and steps[0]["prefect.deployments.steps.set_working_directory"] == {
                "directory": str(REPO)
            }, (name, steps)
        backfill = deployments["backfill/backfill"]
        assert backfill.entrypoint == "flows/backfill.py:backfill"
        assert not backfill.schedules
        schema = backfill.parameter_openapi_schema
        assert schema["required"] == ["start", "end"]
        assert schema["properties"]["start"]["format"] == "date"
        # flat options, each a field of the form with its default and bounds
        chunks = schema["properties"]["parallel_chunks"]
        assert (chunks["default"], chunks["minimum"], chunks["maximum"]) == (2, 1, 64)
        crons = {
            name: [(s.schedule.cron, s.schedule.timezone) for s in deployments[name].schedules]
            for name in ("nightly/nightly", "nightly/retrain")
        }
        assert crons == {
            "nightly/nightly": [(NIGHTLY_CRON, TIMEZONE)],
            "nightly/retrain": [(RETRAIN_CRON, TIMEZONE)],
        }
        assert deployments["nightly/retrain"].parameters == {"retrain": True}
        # the server checks a run's parameters against the form's schema, as for the UI
        assert backfill.enforce_parameter_schema
        bad = {"start": "2015-07-01", "end": "2015-07-03", "parallel_chunks": 0}
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_flow_run_from_deployment(backfill.id, parameters=bad)
        assert refused.value.response.status_code == 409, refused.value
        assert "parallel_chunks" in refused.value.response.text
        assert not client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[backfill.id]))
        )

    # 2. a process worker polling every second; its flow runs read the pipeline's settings
    # from PIPELINE_CONFIG and ship their logs to the API twice a second
    worker = server.start_worker(
        POOL,
        server.env(
            PIPELINE_CONFIG=str(config),
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.5",
        ),
    )

    # 3. one backfill, started like the UI does, over 3 dates in 2 chunks, while the slot is
    # held by a run that crashed: a lease taken and never renewed nor released, as a flow run
    # killed with its worker leaves it (an hour before the server would revoke it)
    # (the series trade on the NYSE: 3 July 2015 was a holiday, no forecast date)
    first_dates = [dt.date(2015, 6, 30), dt.date(2015, 7, 1), dt.date(2015, 7, 2)]
    with server.client() as client:
        client.increment_concurrency_slots_with_lease(
            names=["forecast-pipeline"], slots=1, mode="concurrency", lease_duration=3600
        )
        first = _backfill(client, backfill.id, "2015-06-30", "2015-07-03")
        assert first.parameters["start"] == "2015-06-30"
        first = _finished(server, client, first.id)
        assert worker.proc.poll() is None, tail(worker.log)
        first_logs = _logs(client, first.id)
        assert len(_slot_waits(first_logs)) == 1, first_logs
        freed = "which is no longer running (no run holds the writer lease): freed"
        assert any(freed in x for x in first_logs), first_logs

        tables = _tables(pg_url)
        stages = _stage_runs(tables["pipeline_runs"], first.id, first_dates)
        owners = _forecast_owners(stages)
        _check_forecasts(tables, owners)
        # pipeline_lib's own log records reach the runs' logs, not only the worker's terminal
        stage_logs = [x for r in stages["run_id"] for x in _logs(client, UUID(r))]
        assert any(" pipeline_lib." in x for x in stage_logs), stage_logs

        artifacts = _artifacts(client, [str(first.id), *stages["run_id"]])
        mine = artifacts.pop(str(first.id))
        assert {"backfill-plan", "backfill-progress", "backfill-summary"} <= set(mine), set(mine)
        # the summary links every date's run, by the run's name (the date) and its page
        summary = mine["backfill-summary"].data
        for day, run_id in owners.items():
            assert f"[forecast-{day}](" in summary and f"/runs/flow-run/{run_id})" in summary
        assert mine["backfill-progress"].type == "progress"
        assert float(mine["backfill-progress"].data) == 100.0
        plan = mine["backfill-plan"]
        assert plan.type == "markdown"
        assert "**Backfill 2015-06-30 to 2015-07-03**: 3 forecast dates in 2 chunks" in plan.data
        for run_id, keys in artifacts.items():
            flow = stages.set_index("run_id").loc[run_id, "flow"]
            expected = {"forecasts"} if flow == "forecast" else {"validation-summary"}
            assert expected <= set(keys), (flow, set(keys))
            for key in expected:
                assert keys[key].type == "markdown" and keys[key].data
        for day, run_id in owners.items():
            assert "MSFT" in artifacts[run_id]["forecasts"].data
            assert str(day) in artifacts[run_id]["forecasts"].description
    models = tables["model_versions"]
    assert (models["status"] == "champion").sum() == 1, models[["version", "status"]]

    # 4. two backfills over overlapping dates, created together: the worker starts both at
    # once and both are Running at the same time, so only the slot can keep them apart. Which
    # one gets it first is up to them; the other must wait until it is done. (A: chunks 6-7 and
    # 8 July; B: one chunk, 7-8 July. Both end on the 8th with different models, so whatever
    # the order, the later replaces the model choice the earlier kept as its champion.)
    dates = {
        "A": [dt.date(2015, 7, 6), dt.date(2015, 7, 7), dt.date(2015, 7, 8)],
        "B": [dt.date(2015, 7, 7), dt.date(2015, 7, 8)],
    }
    with server.client() as client:
        created = {
            name: _backfill(client, backfill.id, str(days[0]), str(days[-1]))
            for name, days in dates.items()
        }
        done = {name: _finished(server, client, run.id) for name, run in created.items()}
        assert worker.proc.poll() is None, tail(worker.log)
        logs = {name: _logs(client, run.id) for name, run in done.items()}
        limit = client.read_global_concurrency_limit_by_name(LIMIT)
        assert limit.active_slots == 0  # released by both
    waits = {name: _slot_waits(lines) for name, lines in logs.items()}
    assert all(len(w) == 1 for w in waits.values()), logs
    earlier, later = sorted(done, key=lambda name: waits[name][0])
    # both were Running at the same time: the worker did not keep them apart, the slot did
    assert done[later].start_time < done[earlier].end_time, {
        name: (run.start_time, run.end_time) for name, run in done.items()
    }
    assert any("waiting for the 'forecast-pipeline' slot" in x for x in logs[later])
    assert waits[later][0] > 1.0, logs[later]
    later_holds = next(_log_time(x) for x in logs[later] if WAITED.search(x))

    tables = _tables(pg_url)
    runs = {name: _stage_runs(tables["pipeline_runs"], done[name].id, dates[name]) for name in done}
    # every write of the earlier run was over before the later one got the slot and began
    assert runs[earlier]["finished_at"].max() < later_holds
    assert later_holds <= runs[later]["started_at"].min()
    # each date holds the complete rows of exactly one run: the later run rewrote the dates the
    # two share, or, where its inputs were those of the earlier run's forecast of the date (the
    # same lineage start, settings and models; the ingest rewrote no curated file), answered
    # from it (pipeline_lib.running.rerun); the dates of the backfill before are untouched
    owners = {**owners, **_forecast_owners(runs[earlier]), **_forecast_owners(runs[later])}
    _check_forecasts(tables, owners)
    shared = [d for d in dates["A"] if d in dates["B"]]
    later_runs = runs[later][runs[later]["flow"] == "forecast"].set_index("as_of")
    for day in shared:
        run = later_runs.loc[day]
        assert owners[day] == run["run_id"] or (
            owners[day] == run["wrote"] and owners[day] in set(runs[earlier]["run_id"])
        ), (day, run["run_id"], owners[day])
    models = tables["model_versions"]
    champions = sorted(models.loc[models["status"] == "champion", "version"])
    assert len(champions) == 1, champions  # the earlier run's champion was retired

    # 5. the nightly schedules made scheduled runs (the server's scheduler works)
    with server.client() as client:
        scheduled = client.read_flow_runs(
            deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[deployments["nightly/nightly"].id])
            )
        )
    assert SCHEDULER_BUG not in server.server.log.read_text(errors="replace")
    assert scheduled, tail(server.server.log)
    london = ZoneInfo(TIMEZONE)
    for run in scheduled:
        assert run.state.is_scheduled()
        when = run.expected_start_time.astimezone(london)
        assert (when.month, when.day, when.hour, when.minute) == (1, 1, 6, 30), when

    # 6. stop the worker, then the server: nothing may be left running
    left = server.stop()
    assert not left, left
    for service in [*server.workers, server.server]:  # SIGTERM is expected to suffice
        how = "SIGKILL after SIGTERM" if service.killed else "SIGTERM"
        print(f"{service.name} stopped by {how} in {service.stop_seconds:.1f} s")
