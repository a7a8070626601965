"""The tuning flow: a hyper-parameter search on the backtest; later trainings use its best."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from flows.runs import recorded_run
from pipeline_lib.config import load_settings
from tasks.model import build_features, tune_hyperparameters


@flow(name="tune", log_prints=True)
def tune(
    as_of: dt.date, config_file: str | None = None, n_trials: int | None = None
) -> dict[str, Any]:
    """Search look-back, hidden size, layers, dropout, learning rate and batch size on the
    backtest as of ``as_of`` (curated data must be ingested up to it), and save the best
    configuration for the next trainings.

    Args:
        as_of: The date of the backtest the configurations are scored on.
        config_file: A TOML settings file; otherwise PIPELINE_* variables and defaults.
        n_trials: Configurations tried (default ``tuning.n_trials``).
    """
    settings = load_settings(config_file)
    with recorded_run(settings, "tune", as_of) as run:
        features = build_features(settings, as_of)
        study = tune_hyperparameters(settings, features, as_of, n_trials)
        run.details = {k: v for k, v in study.items() if k != "trials"}
    return study
