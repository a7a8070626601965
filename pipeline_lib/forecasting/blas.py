"""How many threads NumPy's and SciPy's BLAS use: one, once the baselines or the LSTM's linear
base do their small linear algebra. Torch-free: the baselines import it without loading torch.

NumPy's and SciPy's BLAS (OpenBLAS, a thread per core by default) run the baselines' and the
linear base's small linear algebra: ridge regressions of a few hundred rows by a few dozen
inputs, per series and origin. Threads buy nothing at that size, and a second BLAS team beside
torch's OpenMP team (or another process) costs a lot: on this 2-core machine, busy with a
second process, a batch of 14 eigendecompositions of 30 x 30 took 9.8 ms on two OpenBLAS
threads and 2.3 ms on one. :func:`blas_on_one_thread` puts it on one, before the first such
work (the baselines' forecasts, the linear base's fit). A user who sets
``OPENBLAS_NUM_THREADS`` sees it overridden; nothing in the pipeline multiplies matrices large
enough to miss the threads.
"""

from __future__ import annotations

import threading

from threadpoolctl import ThreadpoolController

_blas_lock = threading.Lock()


def blas_on_one_thread() -> None:
    """NumPy's and SciPy's BLAS on one thread from now on, for the whole process (each BLAS
    library loaded so far; torch's threads are left alone). OpenBLAS's thread count is
    process-wide, and changing it while another thread is inside a BLAS call (a backfill's
    chunks run in threads) is not safe, so it is only ever lowered to one, never restored: a
    library already on one thread is not touched. Takes a few milliseconds (it lists the
    loaded libraries)."""
    with _blas_lock:
        for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
            if lib.num_threads != 1:
                lib.set_num_threads(1)
