"""A full disk and a read-only data folder, on real file systems: the error names the path and
the operation and says what to do (it used to be 300-600 lines of tracebacks ending in ``No
space left on device`` or ``unable to open database file``, naming no path).

Each test mounts a tiny tmpfs (root only: as root, chmod does not stop writes, so a file system
has to refuse them), fills it or mounts it read-only, and unmounts it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from pipeline_lib import db
from pipeline_lib.db import migrate
from pipeline_lib.errors import StorageError
from pipeline_lib.ingest.sources.base import utc_now
from pipeline_lib.store import atomic_write_bytes, land_raw, upsert_partitions, with_year
from pipeline_lib.store.raw import CSV, Payload

CLI = Path(sys.executable).with_name("forecast-pipeline")
Mount = Callable[..., Path]


def _mount(folder: Path, options: str) -> str | None:
    """Mount a tmpfs on ``folder``; None, or why it could not be mounted."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (as root, chmod does not stop writes either)"
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else f"mount -t tmpfs not permitted: {done.stderr.strip()}"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """``tmpfs(name, options)``: a tmpfs mounted at ``tmp_path/name``, unmounted at the end."""
    mounted: list[Path] = []

    def mount(name: str, options: str = "size=64k") -> Path:
        folder = tmp_path / name
        reason = _mount(folder, options)
        if reason is not None:
            pytest.skip(reason)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)
        if os.path.ismount(folder):
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def _fill(folder: Path) -> None:
    """Use up every byte of the file system of ``folder``."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
        try:
            while True:  # the last partial block
                f.write(b"\0")
        except OSError:
            pass


def _remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


def _payload() -> Payload:
    return Payload(
        source="file",
        dataset="prices",
        key="USER",
        request={"path": "a.csv"},
        fetched_at=utc_now(),
        content=b"date,close\n2015-06-30,10.5\n" * 200,
        media_type=CSV,
        name="a.csv",
    )


def test_a_full_disk_names_the_file_and_leaves_no_temp_file(tmpfs: Mount) -> None:
    full = tmpfs("full")
    _fill(full)
    target = full / "curated" / "part-0.parquet"
    with pytest.raises(StorageError) as caught:
        atomic_write_bytes(str(target), b"x" * 100_000)
    assert str(caught.value) == (
        f"writing {target} failed (No space left on device): free space on that disk (or point "
        "data_dir at another one), then run again"
    )
    assert isinstance(caught.value, OSError) and caught.value.errno == 28
    assert not [p for p in full.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_during_a_parquet_partition_write(tmpfs: Mount) -> None:
    full = tmpfs("full", "size=256k")
    rows = pd.DataFrame(
        {"series_id": "USER", "date": pd.date_range("2015-01-01", periods=5000), "close": 1.5}
    )
    _fill(full)
    with pytest.raises(StorageError, match="No space left on device") as caught:
        upsert_partitions(with_year(rows), str(full / "prices"), ["series_id", "date"], ["year"])
    assert str(caught.value).startswith(f"writing {full}/prices/year=")
    assert "part-0.parquet failed" in str(caught.value)


def test_a_read_only_data_folder_refuses_raw_landing_by_name(tmpfs: Mount) -> None:
    data = tmpfs("data", "ro")
    with pytest.raises(StorageError) as caught:
        land_raw(str(data), _payload())
    message = str(caught.value)
    assert message.startswith(f"writing {data}/raw/dataset=prices/source=file/key=USER/")
    assert "failed (Read-only file system): remount it read-write, or point data_dir" in message


def test_sqlite_in_a_read_only_or_full_folder_names_the_file_and_folder(tmpfs: Mount) -> None:
    read_only = tmpfs("ro", "ro")
    database = read_only / "pipeline.db"
    with pytest.raises(StorageError) as caught:
        with db.engine_scope(f"sqlite:///{database}") as engine:
            migrate.upgrade(engine)
    assert str(caught.value).startswith(
        f"SQLite database {database}: unable to open database file: its folder {read_only} must "
        "exist, be writable and have free space"
    )
    with pytest.raises(StorageError, match="creating the SQLite database's folder .*/ro/sub "):
        db.make_engine(f"sqlite:///{read_only}/sub/pipeline.db")

    # a database that exists, on a disk that became read-only (SQLite says "attempt to write a
    # readonly database" or, needing to create the WAL's -shm file, "unable to open")
    later = tmpfs("later", "size=1m")
    url = f"sqlite:///{later}/pipeline.db"
    with db.engine_scope(url) as engine:
        migrate.upgrade(engine)
    _remount_read_only(later)
    with pytest.raises(StorageError, match=f"SQLite database {later}/pipeline.db: (attempt|unab)"):
        with db.engine_scope(url) as engine, engine.begin() as conn:
            conn.execute(text("DELETE FROM forecasts"))

    full = tmpfs("full")
    _fill(full)
    with pytest.raises(StorageError, match=f"SQLite database {full}/pipeline.db: database or"):
        with db.engine_scope(f"sqlite:///{full}/pipeline.db") as engine:
            migrate.upgrade(engine)


def test_the_cli_prints_one_line_naming_the_database_file(tmpfs: Mount, tmp_path: Path) -> None:
    """``db upgrade`` on a read-only data folder (no Prefect involved): one error line, no
    traceback, exit code 1."""
    data = tmpfs("data", "ro")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env |= {"PIPELINE_DATA_DIR": str(data), "TMPDIR": str(tmp_path)}
    run = subprocess.run(
        [str(CLI), "db", "upgrade"], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    error, details = run.stderr.splitlines()
    assert error.startswith(f"error: SQLite database {data}/pipeline.db: unable to open database")
    assert details.startswith(f"details: {tmp_path}/forecast-pipeline/logs/cli-")
    assert "OperationalError" in Path(details.removeprefix("details: ")).read_text()
