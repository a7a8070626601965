"""The backfill flow: the nightly logic replayed for each date of a range, point-in-time correct,
in chunks that run in parallel (see pipeline_lib.running.backfill for the plan and why it is
safe)."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import version
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.ingest import ingest
from flows.parallel import dask_runner
from flows.slot import exclusive
from flows.subflows import on_parent_heartbeat
from pipeline_lib.config import load_settings
from pipeline_lib.forecasting.blas import blas_on_one_thread
from pipeline_lib.running.backfill import (
    BackfillOptions,
    BackfillParameterError,
    BackfillPlan,
    DaskAddress,
    DryRun,
    ParallelChunks,
    Recompute,
    RetrainEvery,
    SeriesSubset,
    TaskRunnerName,
    date_fingerprint,
    plan_backfill,
    scoped_settings,
)
from tasks.artifacts import publish_backfill_summary
from tasks.model import rebuild_features
from tasks.publish import settle_model_statuses


def _date_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Same code, settings, data and chunk: same results (see date_fingerprint)."""
    settings = scoped_settings(load_settings(parameters["config_file"]), parameters["series"])
    state = date_fingerprint(
        settings, parameters["as_of"], parameters["chunk_start"], parameters["lineage_start"]
    )
    return f"forecast-date-{version('forecast-pipeline')}-{state}"


@task(
    name="forecast-date",
    task_run_name="forecast-{as_of}",
    cache_key_fn=_date_key,
    persist_result=True,
    result_serializer="json",
    retries=1,
    retry_delay_seconds=30,
)
def forecast_date(
    as_of: dt.date,
    chunk_start: dt.date,
    lineage_start: dt.date,
    config_file: str | None,
    series: list[str] | None,
) -> dict[str, Any]:
    """One date of a chunk (a forecast subflow run); its result is cached, so a rerun of the
    backfill after a failure skips the dates already done."""
    # imported here, not at the top: Dask ships this function to its workers by value, and a
    # flow pickled by value loses its module's imports (its parameter types)
    from flows.forecast import forecast_stage
    from flows.subflows import on_parent_heartbeat

    with on_parent_heartbeat():
        details = forecast_stage(
            as_of=as_of,
            config_file=config_file,
            series=series,
            lineage_start=lineage_start,
            refresh_features=False,
        )
    keep = ("as_of", "model_version", "champion", "written", "drift_flags", "unforecast_series")
    links = {k: details.get(k) for k in ("run_url", "plot")}  # the date's run page and plot
    return {**{k: details[k] for k in keep}, **links, "training": details["training"]["action"]}


def chunk_runner(options: BackfillOptions) -> TaskRunner:
    """A thread pool in this process, or Dask (a cluster at ``dask_address``, else a local one
    with a process per chunk)."""
    if options.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=options.parallel_chunks)
    return dask_runner(options.dask_address or None, options.parallel_chunks)


def run_chunks(
    plan: BackfillPlan, options: BackfillOptions, config_file: str | None
) -> list[dict[str, Any]]:
    """Submit every date, each after the previous date of its chunk, first dates first (so a
    thread never waits on work queued behind it); report progress as dates complete."""
    date_task = forecast_date.with_options(refresh_cache=options.recompute)
    total = len(plan.dates)
    progress = create_progress_artifact(
        0.0, key="backfill-progress", description=f"backfill {plan.start} to {plan.end}"
    )
    logger = get_run_logger()
    done: dict[dt.date, dict[str, Any]] = {}
    failed: list[str] = []
    blas_on_one_thread()  # before the chunks' threads: it is process-wide, set once
    with chunk_runner(options) as runner:
        futures: dict[PrefectFuture[Any], dt.date] = {}
        previous: dict[int, PrefectFuture[Any]] = {}
        for step in range(max(len(c.dates) for c in plan.chunks)):
            for i, chunk in enumerate(plan.chunks):
                if step >= len(chunk.dates):
                    continue
                parameters = {
                    "as_of": chunk.dates[step],
                    "chunk_start": chunk.start,
                    "lineage_start": chunk.lineage_start,
                    "config_file": config_file,
                    "series": options.subset,
                }
                wait = [previous[i]] if i in previous else None
                previous[i] = runner.submit(date_task, parameters, wait_for=wait)
                futures[previous[i]] = chunk.dates[step]
        for future in as_completed(list(futures)):
            future.wait()  # sets the final state (state alone may read a stale one from the API)
            day, state = futures[future], future.state
            if state.is_completed():
                done[day] = {**future.result(), "cached": state.name == "Cached"}
            else:
                failed.append(f"{day} ({state.name}: {state.message})")
            update_progress_artifact(progress, 100.0 * (len(done) + len(failed)) / total)
            logger.info("%s: %s (%d of %d dates)", day, state.name, len(done) + len(failed), total)
    if failed:
        raise RuntimeError(f"{len(failed)} of {total} backfill dates did not finish: {failed}")
    return [done[d] for d in sorted(done)]


@flow(name="backfill", flow_run_name="backfill-{start}-to-{end}", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    retrain_every_days: RetrainEvery = 0,
    series: SeriesSubset = [],  # noqa: B006 (validated into a new list; never mutated)
    dry_run: DryRun = False,
    parallel_chunks: ParallelChunks = 2,
    task_runner: TaskRunnerName = "threads",
    dask_address: DaskAddress = "",
    recompute: Recompute = False,
    config_file: str = "",
) -> dict[str, Any] | State:
    """Replay the nightly for every forecast date of ``start``..``end``, safe to rerun.

    Ingests exactly the range, rebuilds the features once, then forecasts each date in chunks
    of ``retrain_every_days`` days run in parallel, each starting with a full training. Each
    date sees only data dated on or before it, and only models trained through it. A range or
    series the run cannot use ends it at once, Failed, with the parameter named (the Run form
    checks each field alone; how two fields relate can only be checked here).

    Args:
        start: The first forecast date.
        end: The last forecast date (inclusive; not before start, not after today).
        retrain_every_days: Full retraining cadence inside the backfill, 0 to 366: the dates
            are cut into chunks of this many days, each starting with a full training.
            0: the settings' training.retrain_every_days.
        series: Only these series ids (empty: every configured series). A subset trains its
            own models; its champions never replace the nightly's.
        dry_run: Only plan: check the range, list the chunks and dates, write nothing.
        parallel_chunks: Chunks run at the same time (workers), 1 to 64.
        task_runner: threads: a thread pool in the flow run's process (trainings take
            turns). dask: prefect-dask's DaskTaskRunner, one process per chunk (pip install
            'forecast-pipeline[dask]').
        dask_address: Scheduler of an existing Dask cluster (tcp://host:8786); empty: a
            local cluster started for the run.
        recompute: Recompute every date, even those a former run of the same backfill
            finished with the same data and settings (their cached results are skipped).
        config_file: A TOML settings file; empty: PIPELINE_* variables (PIPELINE_CONFIG) and
            defaults.
    """
    config = config_file or None
    options = BackfillOptions(
        retrain_every_days=retrain_every_days,
        series=series,
        dry_run=dry_run,
        parallel_chunks=parallel_chunks,
        task_runner=task_runner,
        dask_address=dask_address,
        recompute=recompute,
    )
    settings = load_settings(config)
    try:
        plan = plan_backfill(settings, start, end, options)
    except BackfillParameterError as exc:
        return Failed(message=f"Invalid parameter {exc}")
    create_markdown_artifact(plan.markdown(), key="backfill-plan", description="chunks and dates")
    summary: dict[str, Any] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "dates": len(plan.dates),
        "chunks": [[c.start.isoformat(), c.end.isoformat()] for c in plan.chunks],
        "dry_run": options.dry_run,
    }
    if options.dry_run:
        return summary
    scoped = scoped_settings(settings, options.subset)
    with exclusive(settings, f"backfill {start} to {end}"), on_parent_heartbeat():
        ingest(as_of=end, config_file=config, start=start, series=options.subset)
        rebuild_features(scoped, end)
        results = run_chunks(plan, options, config)
        settle_model_statuses(scoped)
    publish_backfill_summary(settings, plan, results)
    return {**summary, "results": results, "cached": sum(r["cached"] for r in results)}
