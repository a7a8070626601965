"""Subflows of a flow run in the same process run on their parent's heartbeat."""

from __future__ import annotations

from prefect import flow, task
from prefect.settings import get_current_settings

from flows.subflows import on_parent_heartbeat


@flow
def _child() -> int | None:
    return get_current_settings().flows.heartbeat_frequency


@flow
def _parent() -> dict[str, int | None]:
    own = get_current_settings().flows.heartbeat_frequency
    with on_parent_heartbeat():
        child = _child()
    after = get_current_settings().flows.heartbeat_frequency
    alone = _child()  # a subflow called without it keeps Prefect's heartbeat
    return {"parent": own, "child": child, "after": after, "alone": alone}


def test_a_subflow_has_no_heartbeat_of_its_own_and_its_parent_keeps_its_own(
    prefect_api: None,
) -> None:
    default = get_current_settings().flows.heartbeat_frequency
    assert default is not None  # Prefect 3.9: 180 s
    assert _parent() == {"parent": default, "child": None, "after": default, "alone": default}


def test_outside_a_flow_run_nothing_changes(prefect_api: None) -> None:
    default = get_current_settings().flows.heartbeat_frequency
    with on_parent_heartbeat():
        assert get_current_settings().flows.heartbeat_frequency == default
        assert _child() == default  # a top-level flow run keeps its heartbeat


@task
def _date_task() -> int | None:
    """What a backfill date does: a subflow under on_parent_heartbeat, inside a task."""
    with on_parent_heartbeat():
        return _child()


@flow
def _backfill_like() -> int | None:
    with on_parent_heartbeat():  # the body: it runs in this process
        return _date_task.submit().result()  # a worker thread of this process


@flow
def _body_elsewhere() -> int | None:
    # the body never entered it here: as on a Dask worker, where Prefect rebuilds the flow
    # run's context for the task and the flow's body (and its heartbeat) is another process's
    return _date_task()


def test_a_task_of_a_flow_run_of_this_process_runs_its_subflow_on_the_heartbeat_of_the_run(
    prefect_api: None,
) -> None:
    default = get_current_settings().flows.heartbeat_frequency
    assert _backfill_like() is None
    assert _body_elsewhere() == default  # the date's flow keeps its own heartbeat
