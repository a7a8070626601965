"""``postgresql://user@host/db``, the URL most people write, uses the installed driver (psycopg 3
here) instead of ending in ``No module named 'psycopg2'``; a missing driver is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline_lib import db
from pipeline_lib.config import load_settings
from pipeline_lib.db import engine as engine_module
from pipeline_lib.errors import DatabaseError

CLI = Path(sys.executable).with_name("forecast-pipeline")


def test_plain_urls_get_the_installed_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"psycopg"}
    monkeypatch.setattr(engine_module, "_installed", lambda module: module in installed)
    assert db.driver_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert db.driver_url("postgres://u@h/d?sslmode=require") == (
        "postgresql+psycopg://u@h/d?sslmode=require"
    )
    assert db.driver_url("postgresql+psycopg2://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert db.driver_url("postgres+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.driver_url("sqlite:////srv/data/pipeline.db") == "sqlite:////srv/data/pipeline.db"
    installed.add("psycopg2")  # SQLAlchemy's default driver, where a user has installed it
    assert db.driver_url("postgresql://u@h/d") == "postgresql+psycopg2://u@h/d"
    installed.clear()
    with pytest.raises(DatabaseError) as caught:
        db.driver_url("postgresql://u:secret@h/d")
    assert str(caught.value) == (
        "database URL postgresql://u:***@h/d: no PostgreSQL driver is installed: install "
        "psycopg 3 (pip install 'forecast-pipeline[postgres]' or 'psycopg[binary]') or psycopg2"
    )


def test_an_explicit_driver_that_is_missing_says_so() -> None:
    if engine_module._installed("psycopg2"):
        pytest.skip("psycopg2 is installed here")
    with pytest.raises(DatabaseError, match="its driver is not installed .*'psycopg2'"):
        db.make_engine("postgresql+psycopg2://u@localhost/d")


@pytest.mark.postgres
def test_a_plain_postgresql_url_connects(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real server: make_engine, Settings.db_url (which every engine and the writer lease
    read) and the CLI, with the URL as people write it."""
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    assert plain.startswith("postgresql://")
    for url in (plain, plain.replace("postgresql://", "postgres://", 1)):
        with db.engine_scope(url) as engine, engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    monkeypatch.setenv("PIPELINE_DATABASE_URL", plain)
    assert load_settings(data_dir="/tmp/unused").db_url == pg_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env["PIPELINE_DATABASE_URL"] = plain
    run = subprocess.run(
        [str(CLI), "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "upgraded empty ->" in run.stdout and "postgresql+psycopg://" in run.stdout
