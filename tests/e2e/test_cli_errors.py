"""What the user sees when a command fails: ``error:`` lines naming what to fix, the log's path,
no traceback (the tracebacks are in the log file; ``--debug`` prints them too), an exit code
that tells a refusal (1) from a bug (3)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import flows.cli as cli
from flows.cli import main
from flows.run_log import _NoTraceback
from pipeline_lib.errors import ConfigError, StorageError, find_user_error, one_line
from pipeline_lib.ingest.sources.base import ParseError
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("forecast-pipeline")
BAD_DROP = """
[[series]]
id = "USER"
source = {{ kind = "file", options = {{ path = "{drop}" }} }}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI subprocess: its own Prefect home (a local ephemeral API, not
    the test session's) and no PIPELINE_* or PREFECT_API_* settings of the caller's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPELINE_", "PREFECT_API_", "PREFECT_HOME"))
    }
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return env


def test_a_refused_file_prints_one_error_line_and_no_traceback(tmp_path: Path) -> None:
    """The real console script, Prefect's engines and all: a non-numeric close in a dropped CSV
    fails the ingest (before any training). It used to print 309 lines with three tracebacks."""
    drop, data = tmp_path / "drop", tmp_path / "data"
    drop.mkdir()
    (drop / "prices.csv").write_text("date,close\n2015-06-29,10.0\n2015-06-30,abc\n2015-07-01,11\n")
    cfg = write_config(tmp_path / "c.toml", data, extra=BAD_DROP.format(drop=drop.as_posix()))
    run = subprocess.run(
        [str(CLI), "nightly", "--as-of", "2015-07-01", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "Traceback" not in output
    assert "Beginning flow run" in output  # Prefect's progress lines still show
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, output
    (error,) = errors
    assert "prices.csv" in error and "'close'" in error and "rows 2" in error and "abc" in error
    (details,) = [ln for ln in run.stderr.splitlines() if ln.startswith("details: ")]
    log = Path(details.removeprefix("details: "))
    assert log.parent == data / "reports" / "logs" and log.name.startswith("cli-")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "ParseError: prices file" in text
    assert "forecast-pipeline nightly failed" in text


def test_config_errors_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_CONFIG", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no data folder yet: the log goes
    cfg = tmp_path / "my.toml"
    cfg.write_text("[training]\nmax_epochs = -1\nmax_epoch = 3\n")
    assert main(["nightly", "--config", str(cfg)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert lines[:2] == [
        f"error: config file {cfg}: training.max_epoch: unknown setting",
        f"error: config file {cfg}: training.max_epochs: Input should be greater than or equal "
        "to 1 (got -1)",
    ]
    assert lines[2].startswith("details: ") and len(lines) == 3
    log = Path(lines[2].removeprefix("details: "))
    assert log.parent == tmp_path / "forecast-pipeline" / "logs"
    assert "ConfigError" in log.read_text()
    cfg.write_text("horizon = 3\n[training\n")
    assert main(["db", "current", "--config", str(cfg)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: config file {cfg}: line 2, column 10: invalid TOML: "
        "Expected ']' at the end of a table declaration"
    )


def test_a_bug_is_one_short_line_and_debug_prints_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> int:
        raise KeyError("boom")

    monkeypatch.setattr(cli, "run_command", broken)
    cfg = write_config(tmp_path / "c.toml", tmp_path / "data")
    assert main(["db", "current", "--config", str(cfg)]) == 3
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert lines[0] == "error: unexpected KeyError: 'boom' (a bug: please report it, with the log)"
    log = Path(lines[1].removeprefix("details: "))
    assert log.parent == tmp_path / "data" / "reports" / "logs"
    assert 'raise KeyError("boom")' in log.read_text()
    for argv in (["--debug", "db", "current"], ["db", "current", "--debug"]):
        assert main([*argv, "--config", str(cfg)]) == 3
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "error: unexpected KeyError" in err
    monkeypatch.setenv("PIPELINE_DEBUG", "1")
    assert main(["db", "current", "--config", str(cfg)]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_the_console_formatter_drops_tracebacks_only_there() -> None:
    try:
        raise ParseError("prices file 'a.csv': column 'close' has non-numeric values at rows 2")
    except ParseError:
        record = logging.LogRecord("prefect.flow_runs", logging.ERROR, "", 0, "failed", (), None)
        record.exc_info = sys.exc_info()
    shown = _NoTraceback(logging.Formatter("%(levelname)s %(message)s")).format(record)
    assert shown == "ERROR failed"
    assert "Traceback" in logging.Formatter().format(record)  # the log file's handler: all


def test_the_user_error_is_found_behind_a_wrapper() -> None:
    """Prefect re-raises what the task raised, but a caller may wrap it: the chain is read."""
    refused = ParseError("prices file 'a.csv': column 'close' ...")
    try:
        try:
            raise refused
        except ParseError as exc:
            raise RuntimeError("task failed") from exc
    except RuntimeError as wrapper:
        assert find_user_error(wrapper) is refused
    try:
        try:
            raise OSError(28, "No space left on device", "/data/x.parquet")
        except OSError:
            raise ValueError("while writing") from None  # __context__ kept, not shown
    except ValueError as exc:
        found = find_user_error(exc)  # an OSError of a full disk no writer wrapped
    assert isinstance(found, StorageError)
    assert str(found).startswith("accessing /data/x.parquet failed (No space left on device)")
    assert find_user_error(KeyError("x")) is None
    assert ConfigError(["a", "b"]).user_lines() == ["a", "b"]
    assert one_line("2 of 3 failed:\n- batch a:\n    rule 1\n    quarantine: q\n") == (
        "2 of 3 failed: batch a: rule 1; quarantine: q"
    )
