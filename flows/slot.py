"""The one slot every writing run holds: a Prefect global concurrency limit of 1.

The nightly, the periodic retraining and every backfill take it for their whole run, so two runs
never write the same partitions, model folders or SQL rows at once: a backfill started while the
nightly runs waits for the slot (up to ``orchestration.wait_hours``) instead of colliding. The
limit lives on the Prefect API the run talks to (a server, or the local ephemeral one); it is
created when missing. Deployment-level ``concurrency_limit`` in deploy/prefect.yaml only keeps
two runs of the *same* deployment apart; this limit spans all of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from pipeline_lib.config import Settings


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


@contextmanager
def exclusive(settings: Settings, what: str) -> Iterator[None]:
    """Hold the pipeline's slot while the block runs; wait for it first if another run has it."""
    cfg = settings.orchestration
    logger = get_run_logger()
    problem = ensure_limit(cfg.concurrency_limit)
    if problem:
        logger.warning(problem)
    logger.info("%s: waiting for the %r slot", what, cfg.concurrency_limit)
    asked = time.monotonic()
    with concurrency(
        cfg.concurrency_limit, occupy=1, timeout_seconds=cfg.wait_hours * 3600, strict=True
    ):
        logger.info(
            "%s: holds the %r slot (waited %.1f s)",
            what,
            cfg.concurrency_limit,
            time.monotonic() - asked,
        )
        yield
