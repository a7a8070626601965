"""A night's per-series work on Dask (``[parallel] runner = "dask"``): every baseline's backtest
and tonight's baseline forecasts, in chunks of ``series_per_task`` series, each a Prefect task
run on prefect-dask's task runner, so the runs show in the UI and the work spreads over the
cluster's workers. The global LSTM trains once, in the flow's process; the contest, the
selection and publishing stay there too. A series' baselines read that series only, so the
results are those of the local run (``tests/e2e/test_parallel_night.py``)."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.task_runners import TaskRunner

from pipeline_lib import schema
from pipeline_lib.forecasting.champion import BaselineRun, chunked
from pipeline_lib.forecasting.situation import holdout_plan
from pipeline_lib.running.night import Night
from tasks.model import backtest_baselines


def dask_runner(address: str | None, workers: int) -> TaskRunner:
    """prefect-dask's task runner: the cluster at ``address``, else a local cluster of
    ``workers`` single-threaded processes started for the run."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise RuntimeError(
            "a Dask task runner needs prefect-dask: pip install 'forecast-pipeline[dask]'"
        ) from exc
    if address:
        return DaskTaskRunner(address=address)
    cluster = {"n_workers": workers, "threads_per_worker": 1, "processes": True}
    return DaskTaskRunner(cluster_kwargs=cluster)


def baselines_apart(night: Night) -> BaselineRun | None:
    """The baselines' part of the night computed on Dask, or None when it runs locally (in
    the backtest task itself)."""
    settings = night.settings
    cfg = settings.parallel
    if cfg.runner == "local":
        return None
    rows = schema.dated_up_to(night.features, night.as_of)
    plan = holdout_plan(settings, rows, night.as_of)
    series = sorted(str(s) for s in rows[schema.SERIES_ID].unique())
    parts = chunked(series, cfg.series_per_task)
    where = cfg.dask_address or f"a local cluster of {cfg.workers} workers"
    get_run_logger().info(
        "per-series baselines of %d series on Dask (%s): %d task runs", len(series), where,
        len(parts),
    )  # fmt: skip
    with dask_runner(cfg.dask_address, cfg.workers) as runner:
        futures = [
            runner.submit(
                backtest_baselines,
                {
                    "settings": settings,
                    "features": rows.loc[rows[schema.SERIES_ID].isin(part)],
                    "plan": plan,
                    "series": part,
                },
            )
            for part in parts
        ]
        return BaselineRun.concat([f.result() for f in futures])
