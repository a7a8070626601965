"""``pipeline_lib.running.memory.release``: what a stage freed goes back to the system (the resident
set falls back), measured in a fresh interpreter so the test process's own heap does not count."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline_lib.running import memory

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    path = sys.argv[1]
    rng = np.random.default_rng(0)
    n = 400_000
    table = pa.table({f"c{i}": rng.normal(size=n) for i in range(20)})  # 64 MB
    pq.write_table(table, path, row_group_size=50_000)
    del table
    memory.release()
    base = rss_mb()
    # a stage: read the file, convert, work on a sorted copy, keep a small result
    frame = pq.read_table(path).to_pandas()
    result = frame.sort_values("c0").head(10).copy()
    del frame
    memory.release()
    print(base, rss_mb(), len(result))
    """
)


def test_release_gives_a_stages_freed_memory_back(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "t.parquet")],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    base, after, kept = out.stdout.split()
    assert int(kept) == 10
    # the stage peaked near 0.2 GB (the Arrow table, the frame, its sorted copy); without the
    # release, Arrow's pool and glibc's heaps keep most of it (measured: about 230 MB more, 20
    # MB with it; 540 MB and 25 MB with 2.5 times the rows)
    assert float(after) - float(base) < 60, (base, after)


def test_every_heavy_stage_releases_after_it_completes_or_fails() -> None:
    from tasks import artifacts, ingest, model, publish
    from tasks.memory import release_memory

    heavy = [
        ingest.ingest_source, ingest.ingest_file_drops, ingest.validate_batches,
        ingest.commit_curated, model.rebuild_features, model.build_features, model.train_model,
        model.backtest, model.forecast, model.monitor_drift, model.drift_metrics,
        model.tune_hyperparameters, publish.publish_results,
        artifacts.publish_forecast_artifacts,
    ]  # fmt: skip
    for stage in heavy:
        assert release_memory in stage.on_completion_hooks, stage.name
        assert release_memory in stage.on_failure_hooks, stage.name


def test_a_run_exempts_older_objects_from_collections_until_the_last_run_ends() -> None:
    import gc
    import threading
    import weakref

    from pipeline_lib.running import memory

    class Node:
        other: object = None

    assert gc.get_freeze_count() == 0
    inside: list[int] = []
    second_entered, first_may_end = threading.Event(), threading.Event()

    def other_run() -> None:
        with memory.run_objects_only():
            second_entered.set()
            first_may_end.wait(10)
            inside.append(gc.get_freeze_count())

    gc.disable()  # no automatic collection frees the cycle before the run begins
    try:
        node = Node()
        node.other = node  # a cycle: garbage only a collection frees
        alive = weakref.ref(node)
        del node
        with memory.run_objects_only():
            assert gc.get_freeze_count() > 0
            gc.collect()
            assert alive() is not None  # older than the run: not walked, not freed
            worker = threading.Thread(target=other_run)
            worker.start()
            assert second_entered.wait(10)
        # the first run ended while the second goes on: the older objects stay frozen
        gc.collect()
        assert gc.get_freeze_count() > 0 and alive() is not None
        first_may_end.set()
        worker.join(10)
        assert inside and inside[0] > 0
        assert gc.get_freeze_count() == 0  # the last run ended: the collector sees them again
        gc.collect()
        assert alive() is None
    finally:
        gc.enable()
