"""Hyper-parameter search: seeded, scored on the backtest, saved, used point in time."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pipeline_lib.config import SeriesConfig, load_settings
from pipeline_lib.forecasting import tuning
from pipeline_lib.forecasting.backtest import (
    lstm_forecasts,
    overall_mase,
    plan_backtest,
    score_backtest,
)
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full

AS_OF = dt.date(2020, 12, 31)
FEATURES = random_walk_features(n_series=2, n_days=260, start=dt.date(2020, 1, 1))


def _settings(data_dir: Path):
    return load_settings(
        data_dir=str(data_dir),
        horizon=3,
        series=[SeriesConfig(id="S0"), SeriesConfig(id="S1")],
        model={"lookback": 10, "hidden_size": 4, "embedding_dim": 2},
        training={"max_epochs": 2, "train_window_days": 400},
        backtest={"last_n": 4, "step": 2},
        tuning={
            "n_trials": 3,
            "lookback": [8, 12],
            "hidden_size": [4, 8],
            "num_layers": [1],
            "batch_size": [32, 64],
        },
    )


def test_search_is_deterministic_and_saves_the_best(tmp_path: Path) -> None:
    a = tuning.tune(_settings(tmp_path / "a"), FEATURES, AS_OF)
    b = tuning.tune(_settings(tmp_path / "b"), FEATURES, AS_OF)
    assert a["n_trials"] == 3 and a["trials"] == [
        {**t, "train_seconds": a["trials"][i]["train_seconds"]} for i, t in enumerate(b["trials"])
    ]
    mases = [t["mase"] for t in a["trials"]]
    assert all(m is not None and m > 0 for m in mases)
    assert a["best"]["mase"] == min(mases)
    for trial in a["trials"]:
        assert trial["params"]["lookback"] in (8, 12) and trial["params"]["hidden_size"] in (4, 8)
    saved = json.loads((tmp_path / "a" / "models" / "tuning" / "best.json").read_text())
    assert saved == {"as_of": "2020-12-31", **a["best"]}
    assert (tmp_path / "a" / "models" / "tuning" / "2020-12-31.json").exists()


def test_best_configuration_is_used_from_its_date_on(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert tuning.apply_best(settings, AS_OF) is settings  # nothing tuned yet
    params = {"lookback": 12, "hidden_size": 8, "num_layers": 1, "dropout": 0.2}
    params |= {"learning_rate": 0.005, "batch_size": 32}
    tuning.save_study(
        settings.data_dir, {"as_of": "2020-12-01", "best": {"params": params, "mase": 0.9}}
    )
    tuned = tuning.apply_best(settings, AS_OF)
    assert (tuned.model.lookback, tuned.model.hidden_size, tuned.model.dropout) == (12, 8, 0.2)
    assert (tuned.training.learning_rate, tuned.training.batch_size) == (0.005, 32)
    assert tuned.model.embedding_dim == settings.model.embedding_dim  # untouched fields stay
    assert tuning.apply_best(settings, dt.date(2020, 11, 30)) is settings  # not yet tuned then
    off = settings.model_copy(
        update={"tuning": settings.tuning.model_copy(update={"use_best": False})}
    )
    assert tuning.apply_best(off, AS_OF) is off


def test_a_configuration_is_scored_as_the_contest_scores_a_model(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings = settings.model_copy(
        update={"model": settings.model.model_copy(update={"base_refit_rows": 150})}
    )
    plan = plan_backtest(FEATURES, AS_OF, 3, settings.backtest, min_train=13)
    mase, figures = tuning.score_configuration(settings, FEATURES, AS_OF, plan)
    trained = train_full(
        FEATURES, settings.model, settings.training, 3, AS_OF,
        fit_end=plan.holdout_start, feature_set=settings.feature_set,
    )  # fmt: skip
    assert trained.version == figures["version"]  # seeded: the same model

    def scored(base_refit_rows: int | None) -> float:
        rows = lstm_forecasts(trained, FEATURES, plan, settings.frequencies, base_refit_rows)
        _, summary = score_backtest(rows, FEATURES, plan, settings.model.band, 1)
        return overall_mase(summary, trained.version, sorted(plan.origins))

    # the base refitted at the hold-out start, as the nightly's contest scores a model
    assert mase == scored(150) and mase != scored(None)
