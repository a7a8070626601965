"""How many threads torch's CPU operators use: the configured count in the main thread, one in
any other thread.

The backfill runs each forecast date in a worker thread (Prefect's thread pool, a chunk per
worker). PyTorch's CPU build runs its operators on GNU OpenMP, which keeps a team of threads per
thread that calls it; once the main thread's team exists, a second team makes more OpenMP
threads than cores, and libgomp then stops spinning between parallel regions and sleeps
instead, so the many small operators of an LSTM step each pay a wake-up. Measured on this
2-core machine: the same 100 training steps took 0.28-0.35 s in the main thread with 2
threads, 1.6-1.7 s in a worker thread with 2 threads after the main thread had used torch, and
0.33 s in that worker thread with 1 thread; a backfill date's fine-tune took 1.7 s an epoch
against 0.37 s in the nightly. With one thread per worker, the chunks are the parallelism.
A worker gives the bits of the main thread on one thread (tested); against the main thread on
two, the weights can differ in their last float32 bit on some CPUs (on an AMD EPYC, torch
2.13: 2e-6 on forecasts of 500), where a kernel blocks its sums by the thread count.

NumPy's and SciPy's BLAS threads are set in :mod:`pipeline_lib.forecasting.blas` (torch-free,
for the baselines).
"""

from __future__ import annotations

import threading

import torch


def use_threads(configured: int | None = None) -> int:
    """Set torch's intra-op threads for the calling thread's work: ``configured``
    (``training.num_threads``) in the main thread (None: left as it is), 1 in any other;
    returns the count in use."""
    if threading.current_thread() is threading.main_thread():
        count = torch.get_num_threads() if configured is None else configured
    else:
        count = 1
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
