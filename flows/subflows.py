"""Subflows that live on their parent's heartbeat.

Prefect 3.9 gives every flow run a heartbeat (``flows.heartbeat_frequency``, 180 s by
default; the events that zombie-flow detection watches) from a thread of its own that sleeps in
whole seconds and is joined when the run ends: a subflow's end waits for that sleep, up to a
second. A subflow of one task took 1.08 s with it and 0.12 s without (Prefect 3.9.1, the local
API); a nightly runs two subflows (ingest, forecast) and a backfill one per date.

A subflow called while its parent flow runs in the same process adds nothing to the parent's
heartbeat: if the process dies, the parent's heartbeat stops with it. :func:`on_parent_heartbeat`
turns the heartbeat off for the runs started inside it when a flow run is active in this
process, and leaves it alone otherwise (a backfill date on a Dask worker is its process's only
flow run and keeps its own). The setting is Prefect's, in a settings context: nothing else
changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.context import FlowRunContext
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings


@contextmanager
def on_parent_heartbeat() -> Iterator[None]:
    """Flow runs started inside run without a heartbeat of their own when a flow run of this
    process is active (they are its subflows)."""
    if FlowRunContext.get() is None:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
