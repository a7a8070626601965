"""One writer at a time: Prefect's global concurrency limit for queueing, the writer lease for
mutual exclusion.

The nightly, the periodic retraining and every backfill hold both for their whole run:

1. the Prefect global concurrency limit ``orchestration.concurrency_limit`` (1 slot, created
   when missing): runs on the same Prefect API queue on it and show as waiting in the UI.
   Deployment-level ``concurrency_limit`` in deploy/prefect.yaml only keeps two runs of the
   *same* deployment apart; this limit spans all of them.
2. the writer lease of the data folder and the database (:mod:`pipeline_lib.running.lease`):
   two runs that talk to different Prefect APIs (a cron job and a shell with other
   ``PREFECT_HOME`` s) still never write at once.

A slot whose run died (``kill -9``, a worker or machine gone) stays taken on the Prefect side:
its lease lived in the memory of the API server the run talked to. So a waiting run looks every
``orchestration.slot_check_seconds`` (10): when the writer lease is free at two looks in a row,
no live run holds the slot, and it is freed (the log names the run that died). The killed
run's orphaned ephemeral API server is ended, and its ``pipeline_runs`` rows still ``running``
are marked ``crashed``.
Pipelines that share one Prefect server but write different data folders need different
``concurrency_limit`` names.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.runtime import flow_run

from flows.processes import end_orphaned_servers
from flows.runs import current_run_id
from pipeline_lib.config import Settings
from pipeline_lib.running import lease
from tasks.publish import mark_crashed


def ensure_limit(name: str) -> str | None:
    """Create the limit with one slot if the API has none of that name. Returns a warning when
    the existing limit lets writing runs overlap (more than one slot, or inactive)."""
    with get_client(sync_client=True) as client:
        try:
            found = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
            except ObjectAlreadyExists:  # another run created it just now
                pass
            return None
    if found.limit != 1 or not found.active:
        return (
            f"concurrency limit {name!r} has {found.limit} slots (active: {found.active}): "
            "writing runs may overlap"
        )
    return None


def free_dead_slot(name: str) -> int:
    """Set the limit's active slots to 0; returns how many were taken."""
    with get_client(sync_client=True) as client:
        taken = client.read_global_concurrency_limit_by_name(name).active_slots
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return taken


def _holder() -> ConcurrencyLeaseHolder | None:
    run = flow_run.get_id()
    return ConcurrencyLeaseHolder(type="flow_run", id=run) if run else None


def _slot_open(name: str) -> bool:
    """Whether the limit has a slot free now (a read: nothing is taken)."""
    with get_client(sync_client=True) as client:
        found = client.read_global_concurrency_limit_by_name(name)
    return found.active_slots < found.limit


def _take_slot(stack: ExitStack, settings: Settings, what: str, deadline: float) -> None:
    """Queue on the Prefect slot; free it when the run holding it is gone.

    A waiting run reads the limit every ``slot_check_seconds`` and asks for the slot only when
    one is free (each acquisition that times out costs the API a write and logs an error)."""
    name, logger = settings.orchestration.concurrency_limit, get_run_logger()
    check = settings.orchestration.slot_check_seconds
    free_looks, said = 0, -math.inf
    while True:
        if _slot_open(name):
            try:
                stack.enter_context(
                    concurrency(
                        name, occupy=1, timeout_seconds=max(1.0, check), strict=True,
                        holder=_holder(),
                    )
                )  # fmt: skip
                return
            except AcquireConcurrencySlotTimeoutError:
                continue  # another waiting run took it first
        if time.monotonic() >= deadline:
            raise lease.LeaseTimeout(
                f"{what}: the {name!r} slot stayed taken for "
                f"{settings.orchestration.wait_hours} h (orchestration.wait_hours)"
            )
        if not lease.is_free(settings.data_dir, settings.db_url):
            free_looks = 0
            if time.monotonic() - said >= 60:
                current = lease.read_holder(settings.data_dir)
                who = current.describe() if current else "another run"
                logger.info("%s: waiting for the %r slot; %s is writing %s",
                            what, name, who, settings.data_dir)  # fmt: skip
                said = time.monotonic()
        elif (free_looks := free_looks + 1) >= 2:
            dead = lease.read_holder(settings.data_dir)
            who = dead.describe() if dead else "a run"
            taken = free_dead_slot(name)
            logger.warning(
                "%s: the %r slot (%d taken) was held by %s, which is no longer running "
                "(no run holds the writer lease): freed",
                what, name, taken, who,
            )  # fmt: skip
            free_looks = 0
            continue
        time.sleep(check)


@contextmanager
def exclusive(settings: Settings, what: str) -> Iterator[None]:
    """Hold the pipeline's slot and the writer lease while the block runs; wait for them first
    if another run has them (up to ``orchestration.wait_hours`` in all)."""
    cfg = settings.orchestration
    logger = get_run_logger()
    for pid in end_orphaned_servers():
        logger.warning("ended pid %d: the Prefect API server of a run that was killed", pid)
    problem = ensure_limit(cfg.concurrency_limit)
    if problem:
        logger.warning(problem)
    asked = time.monotonic()
    deadline = asked + cfg.wait_hours * 3600
    logger.info("%s: waiting for the %r slot", what, cfg.concurrency_limit)
    with ExitStack() as stack:
        _take_slot(stack, settings, what, deadline)
        holder = lease.Holder.this_process(what, current_run_id())
        left = stack.enter_context(
            lease.writer_lease(
                settings.data_dir,
                settings.db_url,
                holder,
                wait_s=max(0.0, deadline - time.monotonic()),
                say=logger.info,
            )
        )
        logger.info(
            "%s: holds the %r slot and the writer lease (waited %.1f s)",
            what,
            cfg.concurrency_limit,
            time.monotonic() - asked,
        )
        if left is not None:
            _recover(settings, left, holder, logger)
        yield


def _recover(settings: Settings, dead: lease.Holder, now: lease.Holder, logger: Any) -> None:
    crashed = mark_crashed(settings, dead, now)
    logger.warning(
        "%s died holding the writer lease; its runs still marked running are now crashed: %s",
        dead.describe(),
        ", ".join(crashed) or "none",
    )
