"""Torch's threads off the main thread: a backfill's worker trains and forecasts on one thread
(``pipeline_lib.model.threads``), with the bits of the main thread on one thread and, up to
float32 rounding, on its configured count: a backfill date gives the nightly's model."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import torch

from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.model.forecast import predict
from pipeline_lib.model.testing import random_walk_features
from pipeline_lib.model.threads import use_threads
from pipeline_lib.model.train import train_full

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
