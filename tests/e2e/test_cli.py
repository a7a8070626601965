"""The console script's nightly command prints the forecasts it wrote and where things are."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def _prefect_console_outside_capsys() -> None:
    """Prefect's console handler keeps the sys.stderr of the moment its logging is set up.
    Set up under a test's capsys (the first ``main(["nightly", ...])``), it wrote to that
    test's closed capture afterwards, and in a flow that logs its prints the logging errors
    recursed until the next test's run failed."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()


def test_cli_nightly_prints_table_and_paths(
    prefect_api: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = write_config(tmp_path / "c.toml", tmp_path / "data", horizon=5)
    monkeypatch.setenv("PIPELINE_DATABASE_URL", f"sqlite:///{tmp_path}/secret.db")
    assert main(["nightly", "--as-of", "2015-03-31", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "Forecasts as of 2015-03-31" in out
    for series in ("SP500", "NASDAQ", "MSFT", "WTI"):
        assert series in out
    # the stocks follow the NYSE's sessions: Good Friday (2015-04-03) is no trading day
    assert "h=1 (2015-04-01)" in out and "h=5 (2015-04-08)" in out
    assert "Why, per series and horizon bucket" in out and "backtest MASE over" in out
    assert f"{tmp_path}/secret.db" in out and str(tmp_path / "data" / "models") in out
    assert (tmp_path / "secret.db").exists()


def test_cli_rejects_a_reversed_range(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", tmp_path / "data")
    with pytest.raises(SystemExit, match="--end 2015-01-01 is before start 2015-02-01"):
        main(["backfill", "--start", "2015-02-01", "--end", "2015-01-01", "--config", str(cfg)])


def test_cli_backfill_dry_run_plans_and_writes_nothing(
    prefect_api: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "c.toml", data)
    args = ["backfill", "--start", "2015-07-01", "--end", "2015-07-10", "--config", str(cfg)]
    assert main([*args, "--dry-run", "--retrain-every-days", "4", "--series", "WTI"]) == 0
    out = capsys.readouterr().out
    # NYSE sessions: 3 July 2015 (a holiday) and the weekend are no forecast dates
    assert "backfill planned: 7 forecast dates in 3 chunks" in out
    assert "2015-07-06 .. 2015-07-08" in out
    assert not data.exists()  # nothing ingested, no database, no model
    with pytest.raises(SystemExit, match="unknown series"):
        main([*args, "--dry-run", "--series", "GOLD"])
    with pytest.raises(SystemExit, match="retrain_every_days"):
        main([*args, "--dry-run", "--retrain-every-days", "-1"])
