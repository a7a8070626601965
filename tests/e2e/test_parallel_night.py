"""A night's per-series work apart (``[parallel] runner = "dask"``): the baselines computed in
chunks of series, in this process or as Prefect task runs on a local Dask cluster of two worker
processes, give exactly the contest, the choices and the forecasts of the single-process night;
so does a backtest run and scored a chunk of series at a time (``backtest.series_per_chunk``)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from prefect import flow

from flows.parallel import baselines_apart
from pipeline_lib import paths
from pipeline_lib.config import SeriesConfig, load_settings
from pipeline_lib.forecasting import champion, nightly_forecasts, retrain, situation
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.running.night import Night

pytestmark = pytest.mark.e2e

AS_OF = dt.date(2020, 12, 31)
SERIES = [f"S{i}" for i in range(5)]
FEATURES = random_walk_features(n_series=5, n_days=300, start=dt.date(2020, 1, 1), seed=3)


def _settings(tmp_path: Path, series_per_chunk: int = 200, **parallel: object):
    return load_settings(
        data_dir=str(tmp_path / "data"),
        horizon=3,
        series=[SeriesConfig(id=s) for s in SERIES],
        model={"lookback": 10, "hidden_size": 4, "embedding_dim": 2},
        training={"max_epochs": 2, "train_window_days": 400},
        # every default baseline: linear, ets, arima too
        backtest={"last_n": 6, "step": 2, "series_per_chunk": series_per_chunk},
        parallel={"series_per_task": 2, **parallel},
    )


def _forget_baselines(settings) -> None:
    """No cached baseline work: each way computes everything itself."""
    shutil.rmtree(f"{paths.models_dir(settings.data_dir)}/baselines", ignore_errors=True)


def _night(settings, candidate, decision, apart=None):
    evaluation = champion.evaluate(settings, FEATURES, AS_OF, candidate, decision, apart)
    forecasts = nightly_forecasts.published_forecasts(settings, evaluation, FEATURES, AS_OF)
    return evaluation, forecasts


def _same(one, other, rows_in_order: bool = True) -> None:
    (a, fa), (b, fb) = one, other
    if rows_in_order:
        pd.testing.assert_frame_equal(a.rows, b.rows)
    else:  # chunk by chunk of series
        keys = ["model_version", "series_id", "forecast_date", "horizon"]
        pd.testing.assert_frame_equal(
            a.rows.sort_values(keys, ignore_index=True), b.rows.sort_values(keys, ignore_index=True)
        )
    pd.testing.assert_frame_equal(a.summary, b.summary)
    assert a.selection.to_dict() == b.selection.to_dict()
    pd.testing.assert_frame_equal(fa, fb)


def test_baselines_in_chunks_and_on_dask_give_the_local_night(
    prefect_api: None, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    settings = _settings(tmp_path)
    candidate, decision = retrain.train_or_reuse(settings, FEATURES, AS_OF)
    local = _night(settings, candidate, decision)
    assert set(local[0].rows["model"]) == {
        "lstm",
        "naive",
        "seasonal_naive",
        "linear",
        "ets",
        "arima",
    }

    _forget_baselines(settings)  # run and scored two series at a time in the backtest
    in_chunks = _night(_settings(tmp_path, series_per_chunk=2), candidate, decision)
    _same(local, in_chunks, rows_in_order=False)
    assert not local[0].rows.equals(in_chunks[0].rows)  # the chunks' order: not a no-op

    _forget_baselines(settings)
    plan = situation.holdout_plan(settings, FEATURES, AS_OF)
    parts = [champion.baseline_run(settings, FEATURES, plan, c) for c in (SERIES[:2], SERIES[2:])]
    _same(local, _night(settings, candidate, decision, champion.BaselineRun.concat(parts)))

    _forget_baselines(settings)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_dask = _settings(tmp_path, runner="dask", dask_address=cluster.scheduler_address)

        @flow
        def apart():
            models = situation.situation(on_dask, FEATURES, AS_OF)
            return baselines_apart(Night(on_dask, AS_OF, "test", FEATURES, models))

        computed = apart()
        workers = cluster.scheduler_info["workers"]
        assert len(workers) == 2
    assert computed is not None and len(computed.backtest) == len(
        local[0].rows.query("model != 'lstm'")
    )
    _same(local, _night(settings, candidate, decision, computed))
    here = Night(settings, AS_OF, "test", FEATURES, situation.situation(settings, FEATURES, AS_OF))
    assert baselines_apart(here) is None  # runner "local": in the task
