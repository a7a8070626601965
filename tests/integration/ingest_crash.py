"""Run the ingest stage (the steps of flows/ingest.py, without Prefect) and die on purpose.

Used by test_kill_rerun.py in a subprocess: ``python ingest_crash.py CONFIG AS_OF [POINT N]``.
POINT names the function at whose N-th call (counted over every module that calls it) the
process is killed with ``os._exit(KILLED)``: nothing is flushed or cleaned up, as when a worker
is killed.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

from pipeline_lib.config import load_settings
from pipeline_lib.ingest import batch, curate, file_drops, gate, landing
from pipeline_lib.store import fs, parquet

KILLED = 77

# crash point -> the modules calling a function, and its name, patched to die at its N-th call
POINTS = {
    "land": ((landing, file_drops), "land_raw"),  # fetched, not yet landed
    "parse": ((batch,), "parse_payload"),  # landed, not yet parsed
    "validate": ((gate,), "validate_batches"),  # every batch landed and parsed, none committed
    "partition": ((parquet,), "atomic_write_bytes"),  # see below: dies half-way through it
    "manifest": ((curate,), "record_files"),  # rows committed, the file drop not yet recorded
}


def die_at(point: str, n: int) -> None:
    modules, name = POINTS[point]
    real = getattr(modules[0], name)
    calls = 0

    def dying(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n and point == "partition":
            fs._move = lambda *_: os._exit(KILLED)  # temp file written, never renamed
        elif calls == n:
            os._exit(KILLED)
        return real(*args, **kwargs)

    for module in modules:
        assert getattr(module, name) is real, f"{module.__name__}.{name} is another function"
        setattr(module, name, dying)


def run_ingest(config_file: str, as_of: dt.date) -> dict[str, int]:
    settings = load_settings(config_file)
    batches = [landing.ingest_source(settings, s, as_of) for s in landing.sources_for(settings)]
    gate.check_batches(settings.data_dir, batches, as_of)
    return curate.commit_batches(settings.data_dir, batches)


if __name__ == "__main__":
    config, as_of = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
    if len(sys.argv) > 3:
        die_at(sys.argv[3], int(sys.argv[4]))
    run_ingest(config, as_of)
