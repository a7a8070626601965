"""The training policy: full, fine-tune or reuse, point in time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline_lib.config import load_settings
from pipeline_lib.retrain import decide

SETTINGS = load_settings(data_dir="/tmp/unused", training={"retrain_every_days": 28})
SERIES = ["A", "B"]


def _model(
    version: str, train_end: str, kind: str = "full", parent: str | None = None, **over: Any
) -> dict[str, Any]:
    hp = {
        k: getattr(SETTINGS.model, k)
        for k in ("lookback", "hidden_size", "num_layers", "dropout", "embedding_dim")
    }
    record = {
        "version": version,
        "train_end": train_end,
        "kind": kind,
        "parent_version": parent,
        "series_ids": SERIES,
        "horizon": SETTINGS.horizon,
        "quantiles": SETTINGS.model.quantiles,
        "hyperparameters": hp,
    }
    record.update(over)
    return record


def _decide(models: list[dict[str, Any]], as_of: str, newest: str | None = None, **kw: Any):
    day = dt.date.fromisoformat(as_of)
    newest_day = dt.date.fromisoformat(newest) if newest else day
    return decide(models, SETTINGS, day, kw.pop("series", SERIES), newest_day, **kw)


def test_no_model_means_full_training() -> None:
    assert _decide([], "2015-06-30").action == "full"


def test_models_trained_later_are_invisible() -> None:
    later = [_model("m2", "2015-07-10")]
    decision = _decide(later, "2015-06-30")
    assert decision.action == "full" and decision.base_version is None


def test_new_data_means_fine_tune_of_the_current_model() -> None:
    models = [_model("m1", "2015-06-01"), _model("m2", "2015-06-10", "finetune", "m1")]
    decision = _decide(models, "2015-06-12")
    assert (decision.action, decision.base_version) == ("finetune", "m2")


def test_no_new_data_means_reuse() -> None:
    models = [_model("m1", "2015-06-01")]
    decision = _decide(models, "2015-06-03", newest="2015-06-01")
    assert (decision.action, decision.base_version) == ("reuse", "m1")
    assert _decide(models, "2015-06-01").action == "reuse"  # rerun of the same date


def test_cadence_counts_from_the_last_full_training() -> None:
    models = [_model("m1", "2015-06-01"), _model("m2", "2015-06-20", "finetune", "m1")]
    assert _decide(models, "2015-06-28").action == "finetune"  # 27 days after m1
    decision = _decide(models, "2015-06-29")  # 28 days
    assert decision.action == "full" and "28 days" in decision.reason


def test_a_full_training_that_lost_its_contest_still_resets_the_cadence() -> None:
    models = [
        _model("champ", "2015-06-01"),
        _model("lost", "2015-06-29"),  # trained in full, lost to champ
    ]
    decision = _decide(models, "2015-06-30", champion="champ")
    assert (decision.action, decision.base_version) == ("finetune", "champ")


def test_config_changes_and_requests_force_full_training() -> None:
    models = [_model("m1", "2015-06-01")]
    assert _decide(models, "2015-06-02", series=["A", "B", "C"]).action == "full"
    assert _decide(models, "2015-06-02", force_full=True).action == "full"
    changed = [_model("m1", "2015-06-01", horizon=SETTINGS.horizon + 1)]
    assert "horizon" in _decide(changed, "2015-06-02").reason
    bigger = [_model("m1", "2015-06-01", hyperparameters={"lookback": 10})]
    assert "lookback" in _decide(bigger, "2015-06-02").reason
    gru = [_model("m1", "2015-06-01", hyperparameters={"cell": "gru"})]
    assert "cell" in _decide(gru, "2015-06-02").reason
