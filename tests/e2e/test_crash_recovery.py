"""A nightly killed with SIGKILL never blocks the next one, and two nightlies started at once on
different Prefect APIs never overlap; the rows they leave equal an uninterrupted run's.

Real ``forecast-pipeline nightly`` processes, each with Prefect's local ephemeral API, on the
bundled data (one series, a short history, a small model), a data folder and a SQLite file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from flows.processes import orphaned_servers
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CRASH = Path(__file__).with_name("nightly_crash.py")
AS_OF = "2015-06-30"
EXTRA = """
[orchestration]
slot_check_seconds = 1

[backtest]
last_n = 4

[[series]]
id = "MSFT"
source = { kind = "sample", options = { symbol = "MSFT" } }
weather = { name = "seattle", latitude = 47.6062, longitude = -122.3321 }
"""
# Columns that name the run or the moment, not the result.
VOLATILE = {"run_id", "created_at", "updated_at", "validated_at", "path"}
TIMES = {"elapsed", "train_seconds"}  # in model metrics
FREED = "which is no longer running (no run holds the writer lease): freed"
RESULT_TABLES = [
    "forecasts", "backtest_results", "drift_metrics", "actuals", "model_versions",
    "training_decisions",
]  # fmt: skip


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PIPELINE_"))}
    return {**env, "PREFECT_HOME": str(home), "PYTHONPATH": str(REPO)}


def _nightly(
    cfg: Path, home: Path, point: str | None = None, like: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a nightly; its output goes to a file (an orphaned child would hold a pipe open).
    ``like``: a Prefect home whose database is copied into a new ``home`` (Prefect's schema
    migrations take seconds on every fresh home)."""
    cli = ["nightly", "--as-of", AS_OF, "--config", str(cfg)]
    command = [str(CRASH), point, *cli] if point else ["-m", "flows.cli", *cli]
    if like is not None and not home.exists():
        shutil.copytree(like, home, ignore=shutil.ignore_patterns("*.log"))
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f"out-{time.monotonic_ns()}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *command], cwd=REPO, env=_env(home), stdout=log, stderr=log
        )
    proc.log = Path(log.name)  # type: ignore[attr-defined]
    return proc


def _finish(proc: subprocess.Popen[bytes], timeout: float = 240) -> str:
    proc.wait(timeout)
    return proc.log.read_text()  # type: ignore[attr-defined]


def _config(tmp: Path, name: str) -> Path:
    return write_config(
        tmp / f"{name}.toml", tmp / name, extra=EXTRA, horizon=5, start_date="2014-09-01"
    )


def _untimed(metrics: str | None) -> str | None:
    """The metrics JSON without training times (baselines have none: null)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMES}
        return [strip(v) for v in value] if isinstance(value, list) else value

    if not isinstance(metrics, str):
        return None
    return json.dumps(strip(json.loads(metrics)), sort_keys=True)


def _tables(data: Path) -> dict[str, pd.DataFrame]:
    engine = create_engine(f"sqlite:///{data / 'pipeline.db'}")
    out = {}
    with engine.connect() as conn:
        for table in RESULT_TABLES:
            df = pd.read_sql(text(f"SELECT * FROM {table}"), conn)
            df = df.drop(columns=[c for c in df.columns if c in VOLATILE])
            if table == "training_decisions":  # one row per run: the same decision again
                df = df.drop_duplicates()
            if table == "model_versions":  # training times are measured, not results
                df["metrics"] = df["metrics"].map(_untimed)
            out[table] = df.sort_values(list(df.columns)).reset_index(drop=True)
        runs = pd.read_sql(text("SELECT * FROM pipeline_runs ORDER BY started_at"), conn)
    engine.dispose()
    out["pipeline_runs"] = runs
    return out


def _models(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "models").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tables and models of one plain run, and its Prefect home (copied for the others)."""
    tmp = tmp_path_factory.mktemp("reference")
    cfg = _config(tmp, "data")
    proc = _nightly(cfg, tmp / "home")
    out = _finish(proc)
    assert proc.returncode == 0, out
    models = pd.DataFrame({"v": _models(tmp / "data")})
    return {**_tables(tmp / "data"), "models": models, "home": tmp / "home"}


def test_killed_nightlies_are_recovered_and_two_at_once_take_turns(
    uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    """Killed once holding the slot before anything is written, once after everything but the
    run's end is written: each next run frees the slot, ends the orphaned API server and marks
    the dead run crashed. Then two nightlies start at the same instant on different Prefect
    APIs (the killed runs' home, and another): one waits for the other, saying for whom, and
    they leave the rows of one uninterrupted run."""
    cfg, home, like = _config(tmp_path, "data"), tmp_path / "home", uninterrupted["home"]
    for point in ("ingest", "published"):
        orphans = orphaned_servers(str(home))
        proc = _nightly(cfg, home, point, like=like)
        out = _finish(proc)
        assert proc.returncode == -signal.SIGKILL, out
        if orphans:  # after the first kill
            assert FREED in out  # the dead run's slot
            assert "died holding the writer lease" in out
            assert all(not Path(f"/proc/{pid}").exists() for pid in orphans), out
        assert orphaned_servers(str(home)), "a killed run leaves its API server behind"

    orphans = orphaned_servers(str(home))
    started = time.monotonic()
    procs = [_nightly(cfg, home, like=like), _nightly(cfg, tmp_path / "other-home", like=like)]
    outs = [_finish(p) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert time.monotonic() - started < 240, outs  # not the 12 h wait for the slot
    assert FREED in outs[0]
    assert sum("died holding the writer lease" in o for o in outs) == 1, outs
    # one took the lease; the other said for whom it waited (at the slot of its API, still held
    # by the killed run, or at the writer lease)
    waiting = re.compile(r"waiting for (the 'forecast-pipeline' slot; )?nightly 2015-06-30 \(run ")
    assert sum(bool(waiting.search(o)) for o in outs) == 1, outs
    assert all(not Path(f"/proc/{pid}").exists() for pid in orphans)
    assert not orphaned_servers(str(home))

    after = _tables(tmp_path / "data")
    runs = after.pop("pipeline_runs")
    # killed at ingest: its ingest run; killed after publishing: its forecast run
    assert list(runs["status"]) == ["crashed", "succeeded", "crashed", *["succeeded"] * 4]
    crashed = runs[runs["status"] == "crashed"]
    assert crashed["message"].str.startswith("crashed: the process of nightly 2015-06-30").all()
    first_end = pd.to_datetime(runs["finished_at"].iloc[3:5]).max()
    assert pd.to_datetime(runs["started_at"].iloc[5:]).min() >= first_end  # never at once
    for table in RESULT_TABLES:
        pd.testing.assert_frame_equal(after[table], uninterrupted[table], obj=table)
    assert _models(tmp_path / "data") == list(uninterrupted["models"]["v"])
