"""Run ``forecast-pipeline nightly`` and kill this very process with SIGKILL at one stage.

Used by test_crash_recovery.py: ``python nightly_crash.py POINT CLI-ARGS...``. POINT names a
function of the nightly; the process dies by SIGKILL at its first call (``before``) or right
after it returns (``after``): no cleanup, no flush, its Prefect API server left orphaned, as
when a worker is killed.
"""

from __future__ import annotations

import os
import signal
import sys

from flows import cli
from pipeline_lib.forecasting import registry, retrain
from pipeline_lib.ingest import landing

# point -> (module, attribute, when)
POINTS = {
    "ingest": (landing, "ingest_source", "before"),  # slot and lease held, ingest run started
    "model-saved": (retrain, "save_model", "after"),  # tonight's model saved, nothing published
    "published": (registry, "save_selection", "after"),  # rows and selection written
}


def die_at(point: str) -> None:
    module, name, when = POINTS[point]
    real = getattr(module, name)

    def dying(*args, **kwargs):
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, dying)


if __name__ == "__main__":
    die_at(sys.argv[1])
    raise SystemExit(cli.main(sys.argv[2:]))
