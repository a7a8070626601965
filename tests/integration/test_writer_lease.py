"""The writer lease keeps two runs of one data folder and database apart without Prefect, says
whom a waiting run waits for, and is free the moment its holder is killed.

Real processes, a real data folder, a SQLite file and a throw-away PostgreSQL database.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline_lib import db
from pipeline_lib.running.lease import Holder, LeaseTimeout, is_free, read_holder, writer_lease

HOLDER = Path(__file__).with_name("lease_holder.py")
REPO = Path(__file__).resolve().parents[2]


def _hold(data: Path, url: str, what: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), str(data), url, what],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_waits_names_the_holder_and_takes_over_when_it_is_killed(
    db_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = _hold(data, db_url, "nightly 2015-06-30")
    try:
        assert not is_free(str(data), db_url)
        recorded = read_holder(str(data))
        assert recorded is not None and recorded.pid == first.pid
        me = Holder.this_process("nightly 2015-06-30", "run-second")
        said: list[str] = []
        with pytest.raises(LeaseTimeout, match=rf"still being written by nightly 2015-06-30 "
                           rf"\(run run-nightly 2015-06-30, pid {first.pid} on "):  # fmt: skip
            with writer_lease(str(data), db_url, me, wait_s=1.5, say=said.append, poll_s=0.2):
                pytest.fail("took a lease that another process holds")
        assert said and f"waiting for nightly 2015-06-30 (run run-nightly 2015-06-30, pid " \
            f"{first.pid}" in said[0]  # fmt: skip
        assert f"since {recorded.since}" in said[0]

        first.send_signal(signal.SIGKILL)  # no cleanup: the record stays, the locks go
        first.wait(10)
        killed = time.monotonic()
        with writer_lease(str(data), db_url, me, wait_s=30, poll_s=0.2) as left:
            assert time.monotonic() - killed < 5
            assert left == recorded  # the dead holder's record: whose runs crashed
            assert read_holder(str(data)) == me
            assert not is_free(str(data), db_url)
        assert read_holder(str(data)) is None and is_free(str(data), db_url)
        with writer_lease(str(data), db_url, me, wait_s=1) as left:
            assert left is None  # let go normally: nothing to recover
    finally:
        first.kill()
        first.wait(10)


def test_two_data_folders_on_one_database_are_kept_apart_by_the_database(
    db_url: str, tmp_path: Path
) -> None:
    holder = _hold(tmp_path / "a", db_url, "nightly a")
    try:
        me = Holder.this_process("nightly b", "run-b")
        with pytest.raises(LeaseTimeout):
            with writer_lease(str(tmp_path / "b"), db_url, me, wait_s=0.5, poll_s=0.1):
                pytest.fail("a second data folder on the same database was not kept apart")
        other = f"sqlite:///{tmp_path / 'other.db'}"
        with writer_lease(str(tmp_path / "b"), other, me, wait_s=1):
            pass  # another folder and another database: no conflict
    finally:
        holder.kill()
        holder.wait(10)


def test_runs_a_dead_holder_left_running_are_marked_crashed(db_engine: Engine) -> None:
    engine = db_engine
    db.create_schema(engine)
    since = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    db.start_run(engine, "old", "forecast", dt.date(2015, 6, 29))
    db.finish_run(engine, "old", "succeeded")
    db.start_run(engine, "dead-ingest", "ingest", dt.date(2015, 6, 30))
    db.start_run(engine, "dead-forecast", "forecast", dt.date(2015, 6, 30))
    with engine.begin() as conn:  # "old" ran before the dead holder took the lease
        conn.execute(
            db.pipeline_runs.update()
            .where(db.pipeline_runs.c.run_id == "old")
            .values(started_at=since - dt.timedelta(hours=1))
        )
    crashed = db.mark_crashed(engine, since, "crashed: pid 1 died")
    assert sorted(crashed) == ["dead-forecast", "dead-ingest"]
    t = db.pipeline_runs
    with engine.connect() as conn:
        statuses = dict(conn.execute(t.select().with_only_columns(t.c.run_id, t.c.status)).all())
        message = conn.execute(t.select().where(t.c.run_id == "dead-ingest")).mappings().one()
    assert statuses == {"old": "succeeded", "dead-ingest": "crashed", "dead-forecast": "crashed"}
    assert message["message"] == "crashed: pid 1 died" and message["finished_at"] is not None
    assert db.mark_crashed(engine, since, "again") == []
