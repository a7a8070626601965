"""End-to-end fixtures: Prefect's test harness (a temporary local API) and small configs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

SMALL_MODEL = """
horizon = {horizon}
start_date = "{start_date}"
data_dir = "{data_dir}"

[model]
lookback = 20
hidden_size = 8
embedding_dim = 2

[training]
max_epochs = 3
patience = 2
finetune_epochs = 1
train_window_days = 500
finetune_window_days = 60
retrain_every_days = {retrain_every_days}

[drift]
recent_days = 60

[tuning]
lookback = [15, 20]
hidden_size = [4, 8]
num_layers = [1]
batch_size = [64]
"""


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    with prefect_test_harness(server_startup_timeout=120):
        yield


def write_config(
    path: Path,
    data_dir: Path,
    extra: str = "",
    horizon: int = 7,
    start_date: str = "2014-07-01",
    retrain_every_days: int = 28,
) -> Path:
    path.write_text(
        SMALL_MODEL.format(
            horizon=horizon,
            start_date=start_date,
            data_dir=data_dir.as_posix(),
            retrain_every_days=retrain_every_days,
        )
        + extra
    )
    return path
