"""A night's per-series work on Dask: the speed-up of two workers over one (issue 18).

The per-series part of the forecast stage (every baseline's backtest and tonight's baseline
forecasts: the linear model's fits per origin, statsforecast's AutoETS and AutoARIMA fits) is
what ``[parallel] runner = "dask"`` sends to Dask, ``series_per_task`` series per Prefect task
run (``flows/parallel.py``). This bench times it on ``--series`` synthetic series
(``--days`` business days, every other one with a weekday pattern; the default settings:
horizon 14, 40 origins 2 rows apart, the five baselines) with an empty baselines' cache (a
night where the statistical models are fitted, one in 20, and a first night):

- **local**: ``champion.baseline_run`` on every series in this process (what the backtest task
  does with ``runner = "local"``);
- **dask, 1 worker** and **dask, 2 workers**: ``flows.parallel.baselines_apart`` in a flow, on
  a ``distributed.LocalCluster`` of that many single-threaded worker processes started before
  the clock (its start-up and the workers' imports are printed apart; Prefect's local API is
  started before too), through prefect-dask's task runner.

Each run starts from an empty cache in its own data folder; the bench checks that the three
give identical forecasts, and prints the seconds, the speed-up of two workers over one, and the
load average beside them (the machine is shared; the ratio swings less than the seconds).

    python bench/dask_speedup.py                  # 100 series x 1000 business days
    python bench/dask_speedup.py --series 20 --days 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from selection_cost import make_features  # noqa: E402

from pipeline_lib import schema
from pipeline_lib.config import SeriesConfig, Settings, load_settings  # noqa: E402
from pipeline_lib.forecasting import champion, situation  # noqa: E402
from pipeline_lib.forecasting.situation import holdout_plan
from pipeline_lib.running.night import Night  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--series", type=int, default=100)
    p.add_argument("--days", type=int, default=1000, help="business days per series")
    p.add_argument("--series-per-task", type=int, default=10)
    return p.parse_args(argv)


def settings_for(folder: str, series: list[str], per_task: int, **parallel: object) -> Settings:
    return load_settings(
        data_dir=folder,
        series=[SeriesConfig(id=s) for s in series],
        parallel={"series_per_task": per_task, **parallel},
    )


def _warm(dask_worker: object = None) -> None:
    """A worker's one-time imports (torch, statsforecast, the pipeline), before the clock."""
    import statsforecast.models  # noqa: F401

    import tasks.model  # noqa: F401


def _api_up() -> None:
    """Start Prefect's local API (the first flow run of a process does) before the clock."""
    from prefect import flow

    flow(name="bench-dask-speedup-start")(lambda: None)()


def on_dask(settings: Settings, features: pd.DataFrame, as_of: dt.date) -> champion.BaselineRun:
    from prefect import flow

    from flows.parallel import baselines_apart

    @flow(name="bench-dask-speedup")
    def apart() -> champion.BaselineRun | None:
        models = situation.situation(settings, features, as_of)
        return baselines_apart(Night(settings, as_of, "bench", features, models))

    result = apart()
    assert result is not None
    return result


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["model", schema.SERIES_ID, "forecast_date", "target_date"]
    return frame.sort_values(keys).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    import distributed

    args = parse_args(argv)
    features = make_features(args.series, args.days)
    series = sorted(features[schema.SERIES_ID].unique())
    as_of = pd.Timestamp(features[schema.DATE].max()).date()
    print(f"{len(series)} series x {args.days} business days; night {as_of}; load {_load()}")
    seconds: dict[str, float] = {}
    results: dict[str, champion.BaselineRun] = {}
    with tempfile.TemporaryDirectory(prefix="bench_dask_speedup_") as tmp:
        s = settings_for(f"{tmp}/local", series, args.series_per_task)
        plan = holdout_plan(s, features, as_of)
        t = time.perf_counter()
        results["local"] = champion.baseline_run(s, features, plan, series)
        seconds["local"] = time.perf_counter() - t
        print(f"  local: {seconds['local']:.1f} s  (load {_load()})", flush=True)
        _api_up()
        for workers in (1, 2):
            t = time.perf_counter()
            with (
                distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.run(_warm)
                start = time.perf_counter() - t
                label = f"dask, {workers} worker{'s' if workers > 1 else ''}"
                s = settings_for(
                    f"{tmp}/dask-{workers}", series, args.series_per_task,
                    runner="dask", dask_address=cluster.scheduler_address,
                )  # fmt: skip
                t = time.perf_counter()
                results[label] = on_dask(s, features, as_of)
                seconds[label] = time.perf_counter() - t
            print(
                f"  {label}: {seconds[label]:.1f} s (cluster start and imports {start:.1f} s "
                f"apart; load {_load()})",
                flush=True,
            )
    reference = results["local"]
    for run in results.values():
        pd.testing.assert_frame_equal(_sorted(run.backtest), _sorted(reference.backtest))
        pd.testing.assert_frame_equal(_sorted(run.tonight), _sorted(reference.tonight))
    print("\nthe three give identical backtest and tonight's forecasts")
    print("| run | seconds | vs local |")
    print("|---|---|---|")
    for label, value in seconds.items():
        print(f"| {label} | {value:.1f} | {value / seconds['local']:.2f} |")
    speedup = seconds["dask, 1 worker"] / seconds["dask, 2 workers"]
    print(f"\nspeed-up of 2 workers over 1: {speedup:.2f}x; load average now: {_load()}")
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
