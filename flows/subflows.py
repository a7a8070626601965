"""Subflows that live on their parent's heartbeat.

Prefect 3.9 gives every flow run a heartbeat (``flows.heartbeat_frequency``, 180 s by
default; the events that zombie-flow detection watches) from a thread of its own that sleeps in
whole seconds and is joined when the run ends: a subflow's end waits for that sleep, up to a
second. A subflow of one task took 1.08 s with it and 0.12 s without (Prefect 3.9.1, the local
API); a nightly runs two subflows (ingest, forecast) and a backfill one per date.

A subflow called while its parent flow runs in the same process adds nothing to the parent's
heartbeat: if the process dies, the parent's heartbeat stops with it. :func:`on_parent_heartbeat`
turns the heartbeat off for the runs started inside it when the active flow run's body runs in
this process, and leaves it alone otherwise: outside any flow run, and in a task of a flow run
whose body is elsewhere (a backfill date on a Dask worker, where Prefect rebuilds the flow
run's context from the parent process: its subflow keeps a heartbeat of its own, since the
parent's does not watch the worker). The setting is Prefect's, in a settings context: nothing
else changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from prefect.context import FlowRunContext, TaskRunContext
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

_bodies_here: set[UUID] = set()  # flow runs whose body entered on_parent_heartbeat here


@contextmanager
def on_parent_heartbeat() -> Iterator[None]:
    """Flow runs started inside run without a heartbeat of their own when the active flow
    run's body runs in this process (they are its subflows): entered in a flow's body, or in a
    task of a flow run whose body entered it in this process."""
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is None:
        yield
        return
    if TaskRunContext.get() is None:  # the flow's own body: it runs in this process
        _bodies_here.add(run.id)
    elif run.id not in _bodies_here:  # a task of a flow run whose body is elsewhere
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
