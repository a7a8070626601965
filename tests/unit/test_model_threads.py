"""Torch's threads off the main thread: a backfill's worker trains and forecasts on one thread
(``pipeline_lib.forecasting.model.threads``), with the bits of the main thread on one thread and, up
to float32 rounding, on its configured count: a backfill date gives the nightly's model. NumPy's
BLAS goes to one thread once the baselines run (small matrices; ``pipeline_lib.forecasting.blas``,
which loads no torch)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import torch

from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.threads import use_threads
from pipeline_lib.forecasting.model.train import train_full

MODEL = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, dropout=0.0)
TRAIN = TrainingConfig(max_epochs=2, batch_size=64, train_window_days=365, num_threads=2)
END = dt.date(2020, 11, 30)


def test_the_main_thread_keeps_its_count_a_worker_gets_one() -> None:
    before = torch.get_num_threads()
    try:
        assert use_threads(2) == 2 and torch.get_num_threads() == 2
        assert use_threads() == 2  # None: left as it is
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(use_threads, 2).result() == 1
            assert pool.submit(lambda: (use_threads(), torch.get_num_threads())).result() == (1, 1)
        assert torch.get_num_threads() == 2  # the worker's count is its own
    finally:
        torch.set_num_threads(before)


def test_training_and_forecasts_in_a_worker_equal_the_main_threads() -> None:
    features = random_walk_features(n_series=2, n_days=260, weekly_signal=0.02)

    def night(threads: int) -> pd.DataFrame:
        train = TRAIN.model_copy(update={"num_threads": threads})
        trained = train_full(features, MODEL, train, 3, END)
        return predict(trained, features, END, {"S0": "B", "S1": "B"})

    with ThreadPoolExecutor(1) as pool:
        there = pool.submit(night, 2).result()  # a worker: one thread whatever is configured
    pd.testing.assert_frame_equal(night(1), there, check_exact=True)
    # the main thread on two: the same model up to float32 rounding (on some CPUs, AMD EPYC
    # here, a BLAS kernel blocks its sums by the thread count: the last bit of a weight moves)
    pd.testing.assert_frame_equal(night(2), there, check_exact=False, rtol=1e-6)


BLAS_CHECK = """
import json
import sys
from threadpoolctl import threadpool_info
from pipeline_lib.forecasting.linear_baseline import LinearLags
from pipeline_lib.forecasting.model.testing import random_walk_features

def blas():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

before = blas()
features = random_walk_features(n_series=1, n_days=120)
forecast = LinearLags().fit(features).predict(features["date"].max().date(), 3)
print(json.dumps(
    {"before": before, "after": blas(), "rows": len(forecast), "torch": "torch" in sys.modules}
))
"""


def test_the_baselines_put_numpys_blas_on_one_thread_for_good() -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}  # as on a 2-core machine
    out = subprocess.run(
        [sys.executable, "-c", BLAS_CHECK], env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["rows"] == 3
    assert seen["before"] and max(seen["before"]) == 2  # NumPy's and SciPy's OpenBLAS
    assert seen["after"] == [1] * len(seen["after"]) and len(seen["after"]) >= len(seen["before"])
    assert not seen["torch"]  # the baselines and their BLAS setting load no torch
