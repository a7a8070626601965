"""The training policy: full, fine-tune or reuse, point in time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipeline_lib.config import load_settings
from pipeline_lib.errors import ConfigError
from pipeline_lib.forecasting.retrain import decide
from pipeline_lib.monitoring.policy import DriftVerdict

SETTINGS = load_settings(data_dir="/tmp/unused", training={"retrain_every_days": 28})
SERIES = ["A", "B"]


def _model(
    version: str, train_end: str, kind: str = "full", parent: str | None = None, **over: Any
) -> dict[str, Any]:
    hp = {
        k: getattr(SETTINGS.model, k)
        for k in ("lookback", "hidden_size", "num_layers", "dropout", "embedding_dim", "base")
    } | {"gate": True}
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


def test_a_rerun_of_a_night_decides_as_its_first_run_did() -> None:
    """Tonight's own model (from an earlier run of the same night, or one that was killed)
    does not count: the rerun repeats the first run's decision, and training, seeded and
    versioned by its inputs, reaches the same model (loaded, not trained again)."""
    first = [_model("m0", "2015-05-29")]
    tonight = [*first, _model("m1", "2015-06-01", "finetune", "m0")]
    assert _decide(first, "2015-06-01") == _decide(tonight, "2015-06-01")
    assert _decide(tonight, "2015-06-01").base_version == "m0"
    assert _decide([_model("m1", "2015-06-01")], "2015-06-01").action == "full"  # first night


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
    no_base = _model("m1", "2015-06-01")  # saved before the linear base: trained in full
    del no_base["hyperparameters"]["base"]
    assert _decide([no_base], "2015-06-02").reason == "model settings changed: base"
    no_gate = _model("m1", "2015-06-01")  # saved before the gate: trained in full
    del no_gate["hyperparameters"]["gate"]
    assert _decide([no_gate], "2015-06-02").reason == "model settings changed: gate"
    scaled = SETTINGS.model_copy(
        update={"model": SETTINGS.model.model_copy(update={"asinh_rows": 30})}
    )
    asinh = decide(
        [_model("m1", "2015-06-01")], scaled, dt.date(2015, 6, 2), SERIES, dt.date(2015, 6, 2)
    )
    assert asinh.reason == "model settings changed: asinh_rows"  # the windows read y otherwise
    with pytest.raises(ConfigError, match="asinh_rows"):
        load_settings(model={"asinh_rows": 5})
    with pytest.raises(ConfigError, match="asinh_rows"):
        load_settings(model={"lookback": 20, "asinh_rows": 30})
    # how tonight's forecast refits the base is no model setting
    refit = SETTINGS.model_copy(
        update={"model": SETTINGS.model.model_copy(update={"base_refit_rows": 0})}
    )
    same = decide(
        [_model("m1", "2015-06-01")], refit, dt.date(2015, 6, 2), SERIES, dt.date(2015, 6, 2)
    )
    assert same.action == "finetune"


def _verdict(retrain: bool, trigger: str = "drift") -> DriftVerdict:
    return DriftVerdict(retrain, "planted", trigger if retrain else "")


def test_drift_brings_the_full_training_forward_after_the_cooldown() -> None:
    models = [_model("m1", "2015-06-01"), _model("m2", "2015-06-03", "finetune", "m1")]
    cooldown = SETTINGS.retrain_policy.cooldown_days  # counted from the full training, m1
    early = dt.date(2015, 6, 1) + dt.timedelta(days=cooldown - 1)
    late = dt.date(2015, 6, 1) + dt.timedelta(days=cooldown)

    held = _decide(models, early.isoformat(), drift=_verdict(True))
    assert (held.action, held.trigger, held.base_version) == ("finetune", "routine", "m2")
    assert f"only {cooldown - 1} days old (cooldown_days={cooldown}): planted" in held.reason

    full = _decide(models, late.isoformat(), drift=_verdict(True, "drift+decay"))
    assert (full.action, full.trigger, full.reason) == ("full", "drift+decay", "planted")
    assert full.contest and full.base_version == "m2" and full.drift.retrain

    quiet = _decide(models, late.isoformat(), drift=_verdict(False))
    assert (quiet.action, quiet.trigger) == ("finetune", "routine")


def test_the_cadence_and_missing_data_win_over_drift() -> None:
    models = [_model("m1", "2015-06-01")]
    cadence = _decide(models, "2015-06-29", drift=_verdict(True))
    assert (cadence.action, cadence.trigger) == ("full", "cadence")
    stale = _decide(models, "2015-06-20", newest="2015-06-01", drift=_verdict(True))
    assert (stale.action, stale.trigger) == ("reuse", "no_new_data")
    assert stale.drift is not None  # the verdict is recorded whatever decided


def test_every_decision_names_its_trigger() -> None:
    models = [_model("m1", "2015-06-01")]
    assert _decide([], "2015-06-30").trigger == "no_model"
    assert _decide(models, "2015-06-10", force_full=True).trigger == "requested"
    assert _decide(models, "2015-06-10", series=["A"]).trigger == "settings_changed"
    inside = _decide(models, "2015-06-10", holdout_start=dt.date(2015, 5, 20))
    assert (inside.trigger, inside.contest) == ("holdout", False)
