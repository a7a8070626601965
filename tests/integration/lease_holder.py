"""Hold the writer lease in a process of its own until killed.

Used by test_writer_lease.py: ``python lease_holder.py DATA_DIR DB_URL WHAT``. Prints ``held``
once the lease is taken, then sleeps: the test kills it with SIGKILL, as a crash would.
"""

from __future__ import annotations

import sys
import time

from pipeline_lib.running.lease import Holder, writer_lease

if __name__ == "__main__":
    data_dir, db_url, what = sys.argv[1:4]
    with writer_lease(data_dir, db_url, Holder.this_process(what, f"run-{what}"), wait_s=60):
        print("held", flush=True)
        time.sleep(600)
