"""A forecast run of a night already done from the same inputs is answered from that run; any
change of settings, curated data or models, another night in between, or a forced retraining
makes a full night."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from sqlalchemy import Engine

from pipeline_lib import db
from pipeline_lib.config import Settings
from pipeline_lib.running.rerun import REUSED, STATE, already_done, night_state

AS_OF = dt.date(2024, 3, 1)


def _settings(tmp_path: Path, horizon: int = 7) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), horizon=horizon)


def _finished(engine: Engine, run_id: str, as_of: dt.date, state: str) -> None:
    db.start_run(engine, run_id, "forecast", as_of, {"parent_run_id": "nightly-1"})
    details = {"model_version": "v1", STATE: state, "parent_run_id": "nightly-1"}
    db.finish_run(engine, run_id, "succeeded", None, details)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    curated = tmp_path / "data" / "curated" / "prices" / "series_id=A" / "year=2024"
    curated.mkdir(parents=True)
    (curated / "part-0.parquet").write_bytes(b"rows")
    models = tmp_path / "data" / "models" / "v1"
    models.mkdir(parents=True)
    (models / "model.safetensors").write_bytes(b"weights")
    return curated / "part-0.parquet", models


def test_the_same_inputs_reuse_the_run_that_did_the_work(db_engine: Engine, tmp_path: Path) -> None:
    db.create_schema(db_engine)
    settings = _settings(tmp_path)
    _files(tmp_path)
    state = night_state(settings, AS_OF, None)
    _finished(db_engine, "run-1", AS_OF, state)
    done = already_done(db_engine, night_state(settings, AS_OF, None), AS_OF)
    assert done is not None and done["model_version"] == "v1"
    assert (
        done[REUSED]["run_id"] == "run-1"
        and "nothing new since run run-1" in (done[REUSED]["reason"])
    )
    assert "parent_run_id" not in done  # the reusing run keeps its own
    _finished(db_engine, "run-2", AS_OF, state)  # the reusing run, recorded with its details
    db.finish_run(db_engine, "run-2", "succeeded", None, done)
    again = already_done(db_engine, state, AS_OF)
    assert again is not None and again[REUSED]["run_id"] == "run-1"  # who did the work
    assert already_done(db_engine, state, AS_OF, retrain=True) is None
    assert already_done(db_engine, state, AS_OF + dt.timedelta(days=1)) is None


def test_any_change_of_inputs_or_another_night_means_a_full_night(
    db_engine: Engine, tmp_path: Path
) -> None:
    db.create_schema(db_engine)
    settings = _settings(tmp_path)
    part, models = _files(tmp_path)
    state = night_state(settings, AS_OF, None)
    assert night_state(settings, AS_OF, None) == state  # deterministic
    assert night_state(_settings(tmp_path, horizon=5), AS_OF, None) != state
    assert night_state(settings, AS_OF, AS_OF) != state  # a backfill chunk's lineage
    cache = tmp_path / "data" / "models" / "baselines" / "linear"
    cache.mkdir(parents=True)
    (cache / "A.npz").write_bytes(b"cache")
    assert night_state(settings, AS_OF, None) == state  # the baselines' cache changes nothing
    (models.parent / "v2").mkdir()
    (models.parent / "v2" / "metadata.json").write_text("{}")
    assert night_state(settings, AS_OF, None) != state  # a model saved
    (models.parent / "v2" / "metadata.json").unlink()
    (models.parent / "v2").rmdir()
    assert night_state(settings, AS_OF, None) == state
    stat = part.stat()
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert night_state(settings, AS_OF, None) != state  # a curated partition rewritten
    state = night_state(settings, AS_OF, None)
    _finished(db_engine, "run-1", AS_OF, state)
    assert already_done(db_engine, state, AS_OF) is not None
    _finished(db_engine, "run-other-night", AS_OF - dt.timedelta(days=3), "another state")
    assert already_done(db_engine, state, AS_OF) is None  # SQL changed since: run the night
