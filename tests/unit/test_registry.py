"""Champion and challenger: promotion rules, per-series choice, the selection log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pipeline_lib import registry
from pipeline_lib.config import load_settings
from pipeline_lib.retrain import decide

AS_OF = dt.date(2020, 6, 30)
BASELINES = ["naive", "seasonal_naive"]


def _summary(scores: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A backtest summary from {version: {series: mase}} (all-horizon rows only)."""
    rows = [
        {"model_version": v, "series_id": s, "horizon": "ALL", "mase": m}
        for v, by_series in scores.items()
        for s, m in by_series.items()
    ]
    return pd.DataFrame(rows)


BASE = {
    "baseline-naive": {"A": 1.0, "B": 1.0},
    "baseline-seasonal_naive": {"A": 1.2, "B": 0.9},
}


def test_a_better_challenger_is_promoted_and_the_champion_retired() -> None:
    summary = _summary({**BASE, "old": {"A": 1.1, "B": 1.0}, "new": {"A": 0.8, "B": 0.95}})
    sel = registry.select(summary, AS_OF, "old", "new", BASELINES)
    assert sel.promoted and sel.champion == "new"
    assert sel.mase == {"old": 1.05, "new": 0.875}
    assert sel.statuses() == {"old": "retired", "new": "champion"}
    # per series: the LSTM where it beats the best baseline, else the best baseline
    assert sel.published == {"A": "lstm", "B": "seasonal_naive"}


def test_a_worse_challenger_loses_and_the_champion_is_published() -> None:
    summary = _summary({**BASE, "old": {"A": 0.7, "B": 0.8}, "new": {"A": 0.9, "B": 0.8}})
    sel = registry.select(summary, AS_OF, "old", "new", BASELINES)
    assert not sel.promoted and sel.champion == "old"
    assert "champion is kept" in sel.reason
    assert sel.statuses() == {"new": "challenger", "old": "champion"}
    assert sel.published == {"A": "lstm", "B": "lstm"}


def test_a_tie_keeps_the_champion() -> None:
    summary = _summary({**BASE, "old": {"A": 0.9}, "new": {"A": 0.9}})
    assert registry.select(summary, AS_OF, "old", "new", BASELINES).champion == "old"


def test_forced_or_first_challenger_wins_without_a_contest() -> None:
    summary = _summary({**BASE, "new": {"A": 5.0, "B": 5.0}})
    first = registry.select(summary, AS_OF, None, "new", BASELINES)
    assert first.promoted and first.champion == "new" and first.reason == "no champion yet"
    forced = registry.select(summary, AS_OF, "old", "new", BASELINES, forced="series changed")
    assert forced.champion == "new" and forced.reason == "series changed"
    assert forced.statuses() == {"old": "retired", "new": "champion"}
    # an LSTM worse than every baseline publishes nothing itself
    assert first.published == {"A": "naive", "B": "seasonal_naive"}


def test_a_model_must_beat_the_reference_by_the_margin() -> None:
    summary = _summary({**BASE, "m": {"A": 0.95, "B": 0.85}})
    sel = registry.select(summary, AS_OF, "m", "m", BASELINES, min_improvement=0.1)
    # A: the LSTM gains 5% on naive: not enough; B: 15%: published
    assert sel.published == {"A": "naive", "B": "lstm"}
    by_seasonal = registry.select(
        summary, AS_OF, "m", "m", BASELINES, reference="seasonal_naive", min_improvement=0.1
    )
    assert by_seasonal.published == {"A": "lstm", "B": "seasonal_naive"}


def test_series_without_an_lstm_score_get_the_best_baseline() -> None:
    summary = _summary({**BASE, "m": {"A": 0.5, "B": float("nan")}})
    sel = registry.select(summary, AS_OF, "m", "m", BASELINES)
    assert sel.challenger is None and not sel.promoted
    assert sel.published == {"A": "lstm", "B": "seasonal_naive"}
    assert sel.series_mase["B"]["lstm"] is None


def test_latest_selection_is_strictly_before_the_date(tmp_path: Path) -> None:
    url = str(tmp_path / "models")
    summary = _summary({**BASE, "m1": {"A": 0.5}})
    assert registry.latest_selection(url, AS_OF) is None
    for day, version in [(dt.date(2020, 6, 1), "m1"), (AS_OF, "m2")]:
        sel = registry.select(summary, day, None, version, BASELINES)
        registry.save_selection(url, sel)
    assert registry.latest_selection(url, AS_OF).champion == "m1"
    assert registry.latest_selection(url, AS_OF + dt.timedelta(days=1)).champion == "m2"
    assert registry.latest_selection(url, dt.date(2020, 6, 1)) is None
    again = registry.latest_selection(url, AS_OF)
    assert again == registry.Selection.from_dict(again.to_dict())
    # a rerun of a night that reuses its champion keeps the night's first record
    first = registry.latest_selection(url, AS_OF + dt.timedelta(days=1))
    rerun = registry.select(summary, AS_OF, "m2", "m2", BASELINES)
    assert rerun.champion == first.champion and rerun.reason != first.reason
    registry.save_selection(url, rerun)
    assert registry.latest_selection(url, AS_OF + dt.timedelta(days=1)) == first


SETTINGS = load_settings(data_dir="/tmp/unused")


def _record(version: str, train_end: str, fit_end: str | None = None) -> dict:
    hp = SETTINGS.model.model_dump(exclude={"quantiles"})
    return {
        "version": version,
        "train_end": train_end,
        "fit_end": fit_end,
        "kind": "full",
        "parent_version": None,
        "series_ids": ["A"],
        "horizon": SETTINGS.horizon,
        "quantiles": SETTINGS.model.quantiles,
        "hyperparameters": hp,
    }


def test_decide_fine_tunes_the_champion_not_the_newest_model() -> None:
    models = [_record("champ", "2020-06-01", "2020-05-01"), _record("lost", "2020-06-10")]
    day = dt.date(2020, 6, 12)
    decision = decide(models, SETTINGS, day, ["A"], day, champion="champ")
    assert (decision.action, decision.base_version, decision.contest) == (
        "finetune",
        "champ",
        True,
    )
    assert decide(models, SETTINGS, day, ["A"], day).base_version == "lost"


def test_decide_retrains_a_model_trained_inside_the_backtest() -> None:
    models = [_record("old", "2020-06-01")]  # no fit_end: trained on targets up to 06-01
    day = dt.date(2020, 6, 12)
    decision = decide(models, SETTINGS, day, ["A"], day, holdout_start=dt.date(2020, 5, 10))
    assert decision.action == "full" and not decision.contest
    assert "inside tonight's backtest" in decision.reason
    fine = decide(
        [_record("new", "2020-06-01", "2020-05-01")],
        SETTINGS,
        day,
        ["A"],
        day,
        holdout_start=dt.date(2020, 5, 10),
    )
    assert fine.action == "finetune" and fine.contest
