"""A backfill's chunks in parallel: on the thread pool and on a local Dask cluster they give the
same models and rows; a rerun skips every date through the task cache, unless asked not to."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from flows.backfill import backfill
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e

START, END = dt.date(2015, 7, 6), dt.date(2015, 7, 9)  # Monday to Thursday: 2 chunks of 2 days
KEY = ["series_id", "forecast_date", "target_date"]


def _table(data: Path, name: str) -> pd.DataFrame:
    engine = create_engine(f"sqlite:///{data / 'pipeline.db'}")
    with engine.connect() as conn:
        return pd.read_sql_table(name, conn)


def _forecasts(data: Path) -> pd.DataFrame:
    fc = _table(data, "forecasts")[[*KEY, "horizon", "model", "model_version", "yhat"]]
    return fc.sort_values(KEY).reset_index(drop=True)


def test_parallel_chunks_match_and_reruns_are_cached(prefect_api: None, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    threads_dir, dask_dir = tmp_path / "threads", tmp_path / "dask"
    threads_cfg = write_config(tmp_path / "threads.toml", threads_dir)
    dask_cfg = write_config(tmp_path / "dask.toml", dask_dir)
    options = {"retrain_every_days": 2, "parallel_chunks": 2}

    done = backfill(START, END, **options, config_file=str(threads_cfg))
    assert done["chunks"] == [["2015-07-06", "2015-07-07"], ["2015-07-08", "2015-07-09"]]
    assert [r["as_of"] for r in done["results"]] == [
        (START + dt.timedelta(days=i)).isoformat() for i in range(4)
    ]
    assert done["cached"] == 0
    # each chunk starts with a full training (the first: none before it in a new data folder)
    actions = {r["as_of"]: r["training"] for r in done["results"]}
    assert [actions[d] for d in ("2015-07-06", "2015-07-08")] == ["full"] * 2
    assert actions["2015-07-07"] == "finetune"

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_dask = {**options, "task_runner": "dask", "dask_address": cluster.scheduler_address}
        backfill(START, END, **on_dask, config_file=str(dask_cfg))

    threads, dask = _forecasts(threads_dir), _forecasts(dask_dir)
    assert not threads.duplicated(KEY).any() and len(threads) == 4 * 4 * 7
    pd.testing.assert_frame_equal(threads, dask)  # same models, bit-identical forecasts
    versions = sorted(_table(threads_dir, "model_versions")["version"])
    assert versions == sorted(_table(dask_dir, "model_versions")["version"])
    statuses = _table(threads_dir, "model_versions").set_index("version")["status"]
    assert (statuses == "champion").sum() == 1  # former chunks' champions are retired
    assert statuses[done["results"][-1]["champion"]] == "champion"

    # a rerun with the same data and settings skips every date: the results are cached
    written = _table(threads_dir, "forecasts")["created_at"]
    again = backfill(START, END, **options, config_file=str(threads_cfg))
    assert again["cached"] == 4
    assert [r["model_version"] for r in again["results"]] == [
        r["model_version"] for r in done["results"]
    ]
    assert (_table(threads_dir, "forecasts")["created_at"] == written).all()  # not rewritten
    # ... unless asked to recompute: the same rows again
    forced = backfill(START, START, **options, recompute=True, config_file=str(threads_cfg))
    assert forced["cached"] == 0
    pd.testing.assert_frame_equal(_forecasts(threads_dir), threads)
