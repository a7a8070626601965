"""What the Run form cannot check ends a backfill at once, Failed, with the parameter named;
and ``pipeline_lib``'s log records reach the run's logs in the Prefect API (the UI's Logs tab).
Real Prefect (the test harness's API), no mocks."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

import flows  # noqa: F401  (importing the flows routes pipeline_lib's logs to the runs)
from flows.backfill import backfill
from tests.e2e.conftest import write_config


def test_a_reversed_range_fails_at_once_naming_end(prefect_api: None, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", tmp_path / "data")
    state = backfill(
        start=dt.date(2015, 7, 3),
        end=dt.date(2015, 7, 1),
        config_file=str(cfg),
        return_state=True,
    )
    assert state.is_failed()
    assert state.message == (
        "Invalid parameter end: 2015-07-01 is before start 2015-07-03: the backfill start is "
        "after its end"
    )
    assert not (tmp_path / "data").exists()  # nothing ingested, no database, no model
    unknown = backfill(
        start=dt.date(2015, 7, 1),
        end=dt.date(2015, 7, 1),
        series=["GOLD"],
        config_file=str(cfg),
        return_state=True,
    )
    assert unknown.is_failed() and unknown.message.startswith(
        "Invalid parameter series: unknown series ['GOLD']"
    )


@flow
def warns() -> str:
    from prefect.runtime import flow_run

    logging.getLogger("pipeline_lib.ingest.gate").warning(
        "prices-SP500: warning close_jump (2 rows)"
    )
    logging.getLogger("pipeline_lib.ingest.gate").debug("not sent: below INFO")
    return str(flow_run.get_id())


def test_library_log_records_reach_the_run_logs(prefect_api: None) -> None:
    run_id = warns()
    (handler,) = [
        h for h in logging.getLogger("pipeline_lib").handlers if isinstance(h, APILogHandler)
    ]
    handler.flush()  # the records are sent in batches: wait for them
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    mine = [(log.name, log.level, log.message) for log in logs if log.name.startswith("pipeline")]
    assert mine == [
        ("pipeline_lib.ingest.gate", logging.WARNING, "prices-SP500: warning close_jump (2 rows)")
    ]
    # outside a run nothing is sent (and Prefect does not warn that there is no run)
    logging.getLogger("pipeline_lib.ingest.gate").warning("outside any run")
