"""Hyper-parameter search on the backtest, with Optuna's TPE sampler (seeded, sequential).

Each trial trains a full model with one configuration of look-back, hidden size, layers,
dropout, learning rate and batch size (the ranges of ``TuningConfig``), on targets up to the
backtest hold-out start as of ``as_of``, and scores it on the backtest's origins; the objective
is the mean all-horizon MASE over the series. Every trial uses the same origins (planned for
the longest look-back in the space), so trials are compared on the same windows.

The study is saved to ``models/tuning/<as_of>.json`` and the best configuration to
``models/tuning/best.json``. Later trainings use it (:func:`apply_best`) when
``tuning.use_best`` is on and the search was run as of the run date or earlier (point in time:
a backfill never uses a configuration found on later data). A changed configuration makes the
next nightly run train a new model in full (its settings no longer match the champion's).

Note: the search selects on the same kind of backtest the champion contest uses, so its best
score is optimistic; the nightly contests on later dates are the out-of-sample check.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from typing import Any

import optuna
import pandas as pd
from fsspec.core import url_to_fs

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.evaluation.metrics import finite_or_none
from pipeline_lib.forecasting.backtest import (
    BacktestPlan,
    lstm_forecasts,
    overall_mase,
    plan_backtest,
    score_backtest,
)
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.store.fs import atomic_write_bytes

MODEL_PARAMS = ("lookback", "hidden_size", "num_layers", "dropout")
TRAINING_PARAMS = ("learning_rate", "batch_size")
BEST_FILE = "best.json"


def tuning_dir(data_dir: str) -> str:
    return paths.models_dir(data_dir) + "/tuning"


def suggest(trial: optuna.Trial, settings: Settings) -> dict[str, Any]:
    """One configuration from the search space of ``settings.tuning``."""
    space = settings.tuning
    return {
        "lookback": trial.suggest_categorical("lookback", space.lookback),
        "hidden_size": trial.suggest_categorical("hidden_size", space.hidden_size),
        "num_layers": trial.suggest_categorical("num_layers", space.num_layers),
        "dropout": trial.suggest_float("dropout", *space.dropout),
        "learning_rate": trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        "batch_size": trial.suggest_categorical("batch_size", space.batch_size),
    }


def configure(settings: Settings, params: dict[str, Any]) -> Settings:
    """``settings`` with the model and training fields of ``params`` replaced."""
    model = settings.model.model_copy(update={k: params[k] for k in MODEL_PARAMS if k in params})
    training = settings.training.model_copy(
        update={k: params[k] for k in TRAINING_PARAMS if k in params}
    )
    return settings.model_copy(update={"model": model, "training": training})


def score_configuration(
    settings: Settings, features: pd.DataFrame, as_of: dt.date, plan: BacktestPlan
) -> tuple[float, dict[str, Any]]:
    """Train one configuration up to the hold-out and return its backtest MASE and figures:
    scored as the nightly's contest scores a model (with a linear base, the base refitted at
    the hold-out start on ``model.base_refit_rows``, as tonight's forecast refits it)."""
    started = time.perf_counter()
    trained = train_full(
        features,
        settings.model,
        settings.training,
        settings.horizon,
        as_of,
        fit_end=plan.holdout_start,
        feature_set=settings.feature_set,
    )
    frequencies = settings.frequencies
    forecasts = lstm_forecasts(trained, features, plan, frequencies, settings.model.base_refit_rows)
    _, summary = score_backtest(
        forecasts, features, plan, settings.model.band, settings.backtest.mase_season
    )
    mase = overall_mase(summary, trained.version, sorted(plan.origins))
    return mase, {
        "version": trained.version,
        "train_seconds": round(time.perf_counter() - started, 2),
        "best_epoch": trained.metrics.get("best_epoch"),
    }


def tune(
    settings: Settings,
    features: pd.DataFrame,
    as_of: dt.date,
    n_trials: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the search as of ``as_of``, save the study and the best configuration, return the
    study record. Deterministic for the same settings, data and seed."""
    rows = schema.dated_up_to(features, as_of)
    longest = max(settings.tuning.lookback)
    plan = plan_backtest(
        rows, as_of, settings.horizon, settings.backtest, longest + settings.horizon
    )
    if not plan.origins:
        raise ValueError(f"no series has enough history for a backtest as of {as_of}")
    trials: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, settings)
        mase, figures = score_configuration(configure(settings, params), rows, as_of, plan)
        record = {"number": trial.number, "params": params, "mase": finite_or_none(mase), **figures}
        trials.append(record)
        if progress is not None:
            progress(dict(record))
        return mase if math.isfinite(mase) else float("inf")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=settings.tuning.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials or settings.tuning.n_trials)
    best = min(trials, key=lambda t: (t["mase"] is None, t["mase"] or 0.0, t["number"]))
    baseline = {k: getattr(settings.model, k) for k in MODEL_PARAMS} | {
        k: getattr(settings.training, k) for k in TRAINING_PARAMS
    }
    record = {
        "as_of": as_of.isoformat(),
        "holdout_start": str(plan.holdout_start),
        "objective": "mean all-horizon backtest MASE over the series",
        "sampler": f"optuna {optuna.__version__} TPESampler(seed={settings.tuning.seed})",
        "n_trials": len(trials),
        "best": {"params": best["params"], "mase": best["mase"], "trial": best["number"]},
        "configured": baseline,
        "trials": trials,
    }
    save_study(settings.data_dir, record)
    return record


def save_study(data_dir: str, record: dict[str, Any]) -> None:
    """Write the study (``<as_of>.json``) and, as ``best.json``, its best configuration."""
    folder = tuning_dir(data_dir)
    fs, path = url_to_fs(folder)
    fs.makedirs(path, exist_ok=True)
    body = json.dumps(record, indent=2, sort_keys=True).encode()
    atomic_write_bytes(f"{folder}/{record['as_of']}.json", body)
    best = {"as_of": record["as_of"], **record["best"]}
    atomic_write_bytes(f"{folder}/{BEST_FILE}", json.dumps(best, indent=2, sort_keys=True).encode())


def read_best(data_dir: str) -> dict[str, Any] | None:
    fs, path = url_to_fs(f"{tuning_dir(data_dir)}/{BEST_FILE}")
    return json.loads(fs.cat_file(path)) if fs.exists(path) else None


def apply_best(settings: Settings, as_of: dt.date) -> Settings:
    """``settings`` with the best tuned configuration, when ``tuning.use_best`` is on and the
    search ran as of ``as_of`` or earlier; otherwise ``settings`` unchanged."""
    if not settings.tuning.use_best:
        return settings
    best = read_best(settings.data_dir)
    if best is None or best["as_of"] > as_of.isoformat():
        return settings
    return configure(settings, best["params"])
