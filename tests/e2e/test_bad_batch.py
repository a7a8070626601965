"""A user's own CSV (date and close only) works; a bad batch is quarantined and changes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from flows.nightly import nightly
from pipeline_lib.validation import ValidationFailed
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline_lib" / "sample_data" / "prices_SP500.csv"
USER_SERIES = """
[[series]]
id = "USER"
source = {{ kind = "file", options = {{ path = "{drop}" }} }}
"""


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _sql(db: Path) -> dict[str, pd.DataFrame]:
    with create_engine(f"sqlite:///{db}").connect() as conn:
        return {
            t: pd.read_sql_table(t, conn)
            for t in (
                "forecasts",
                "drift_metrics",
                "model_versions",
                "pipeline_runs",
                "validation_results",
            )
        }


def test_user_csv_then_bad_batch(prefect_api: None, tmp_path: Path) -> None:
    drop, data = tmp_path / "drop", tmp_path / "data"
    drop.mkdir()
    prices = pd.read_csv(SAMPLE, parse_dates=["date"])[["date", "close"]]
    prices[prices["date"] <= "2015-06-30"].to_csv(drop / "2015-06-30.csv", index=False)
    cfg = write_config(tmp_path / "user.toml", data, extra=USER_SERIES.format(drop=drop.as_posix()))

    ok = nightly(as_of=dt.date(2015, 6, 30), config_file=str(cfg))
    assert ok["written"]["forecasts"] == 7
    curated_before = _snapshot(data / "curated")
    sql_before = _sql(data / "pipeline.db")

    bad = prices[(prices["date"] > "2015-06-30") & (prices["date"] <= "2015-07-02")].copy()
    bad.loc[bad.index[0], "close"] = -3.5
    bad.to_csv(drop / "2015-07-02.csv", index=False)

    with pytest.raises(ValidationFailed) as failure:
        nightly(as_of=dt.date(2015, 7, 2), config_file=str(cfg))
    message = str(failure.value)
    assert "close" in message and "USER" in message and "-3.5" in message
    assert "2015-07-01" in message and "quarantine" in message

    quarantined = list((data / "quarantine" / "prices").iterdir())
    assert len(quarantined) == 1
    assert {p.name for p in quarantined[0].iterdir()} == {
        "batch.parquet",
        "report.json",
        "payloads.json",
    }
    assert (pd.read_parquet(quarantined[0] / "batch.parquet")["close"] == -3.5).any()
    landed = [p.read_bytes() for p in (data / "raw").rglob("*.csv")]
    assert (drop / "2015-07-02.csv").read_bytes() in landed  # the raw payload is kept

    assert _snapshot(data / "curated") == curated_before
    sql_after = _sql(data / "pipeline.db")
    for table in ("forecasts", "drift_metrics", "model_versions"):  # runs: one more, failed
        pd.testing.assert_frame_equal(sql_after[table], sql_before[table])
    runs = sql_after["pipeline_runs"].sort_values("started_at")
    assert list(runs["flow"]) == ["ingest", "forecast", "ingest"]
    assert list(runs["status"]) == ["succeeded", "succeeded", "failed"]
    assert "close" in runs["message"].iloc[-1]
    checks = sql_after["validation_results"]  # the failed run's verdicts are kept
    failed = checks[checks["run_id"] == runs["run_id"].iloc[-1]]
    assert list(failed.loc[~failed["success"].astype(bool), "batch"]) == ["prices-USER"]
    assert (
        "close_positive"
        in failed.loc[~failed["success"].astype(bool), "failed_expectations"].iloc[0]
    )
