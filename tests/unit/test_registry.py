"""Champion and challenger: promotion rules, per-series choice, the selection log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pipeline_lib.config import SelectionConfig, load_settings
from pipeline_lib.forecasting import registry
from pipeline_lib.forecasting.registry import Selection
from pipeline_lib.forecasting.retrain import decide

AS_OF = dt.date(2020, 6, 30)
BASELINES = ["naive", "seasonal_naive"]


def _backtest(
    scores: dict[str, dict[str, float]], horizon: int = 3, windows: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest rows and summary from {version: {series: mase}}: every window and horizon has
    the scaled error mase +- 0.01 (alternating), so each model's MASE is exactly its value."""
    rows = []
    for v, by_series in scores.items():
        model = v.removeprefix("baseline-") if v.startswith("baseline-") else "lstm"
        for s, m in by_series.items():
            for w in range(windows):
                for h in range(1, horizon + 1):
                    error = m + (0.01 if (w + h) % 2 else -0.01) if m == m else m
                    rows.append(
                        {"model": model, "model_version": v, "series_id": s, "horizon": h}
                        | {"forecast_date": pd.Timestamp("2020-01-01") + pd.Timedelta(days=w)}
                        | {"scaled_error": error}
                    )
    frame = pd.DataFrame(rows)
    summary = (
        frame.groupby(["model", "model_version", "series_id"])["scaled_error"]
        .mean()
        .rename("mase")
        .reset_index()
        .assign(horizon="ALL")
    )
    return frame, summary


BASE = {
    "baseline-naive": {"A": 1.0, "B": 1.0},
    "baseline-seasonal_naive": {"A": 1.2, "B": 0.9},
}
BEST = SelectionConfig(rule="best", bucket_ends=[])


def _select(scores: dict, champion: str | None, challenger: str | None, **kwargs) -> Selection:
    rows, summary = _backtest(scores)
    config = kwargs.pop("config", BEST)
    return registry.select(
        summary, rows, AS_OF, champion, challenger, BASELINES, horizon=3, config=config, **kwargs
    )


def _models(sel: Selection) -> dict[str, str]:
    """The model of each series (one bucket: horizons 1-3)."""
    return {sid: by_bucket["1-3"] for sid, by_bucket in sel.published.items()}


def test_a_better_challenger_is_promoted_and_the_champion_retired() -> None:
    sel = _select({**BASE, "old": {"A": 1.1, "B": 1.0}, "new": {"A": 0.8, "B": 0.95}}, "old", "new")
    assert sel.promoted and sel.champion == "new"
    assert sel.mase == pytest.approx({"old": 1.05, "new": 0.875})
    assert sel.statuses() == {"old": "retired", "new": "champion"}
    # per series: the LSTM where it beats the best baseline, else the best baseline
    assert _models(sel) == {"A": "lstm", "B": "seasonal_naive"}
    assert sel.choices["A"][0]["evidence"]["mase"] == pytest.approx(
        {"lstm": 0.8, "naive": 1.0, "seasonal_naive": 1.2}
    )


def test_a_worse_challenger_loses_and_the_champion_is_published() -> None:
    sel = _select({**BASE, "old": {"A": 0.7, "B": 0.8}, "new": {"A": 0.9, "B": 0.8}}, "old", "new")
    assert not sel.promoted and sel.champion == "old"
    assert "champion is kept" in sel.reason
    assert sel.statuses() == {"new": "challenger", "old": "champion"}
    assert _models(sel) == {"A": "lstm", "B": "lstm"}


def test_a_tie_keeps_the_champion() -> None:
    assert _select({**BASE, "old": {"A": 0.9}, "new": {"A": 0.9}}, "old", "new").champion == "old"


def test_forced_or_first_challenger_wins_without_a_contest() -> None:
    scores = {**BASE, "new": {"A": 5.0, "B": 5.0}}
    first = _select(scores, None, "new")
    assert first.promoted and first.champion == "new" and first.reason == "no champion yet"
    forced = _select(scores, "old", "new", forced="series changed")
    assert forced.champion == "new" and forced.reason == "series changed"
    assert forced.statuses() == {"old": "retired", "new": "champion"}
    # an LSTM worse than every baseline publishes nothing itself
    assert _models(first) == {"A": "naive", "B": "seasonal_naive"}


def test_the_margin_rule_needs_a_gain_over_the_reference() -> None:
    scores = {**BASE, "m": {"A": 0.95, "B": 0.85}}
    margin = SelectionConfig(rule="margin", bucket_ends=[])
    sel = _select(scores, "m", "m", config=margin, min_improvement=0.1)
    # A: the LSTM gains 5% on naive: not enough; B: 15%: published
    assert _models(sel) == {"A": "naive", "B": "lstm"}
    by_seasonal = _select(
        scores, "m", "m", config=margin, reference="seasonal_naive", min_improvement=0.1
    )
    assert _models(by_seasonal) == {"A": "lstm", "B": "seasonal_naive"}


def test_series_without_an_lstm_score_get_the_best_baseline() -> None:
    sel = _select({**BASE, "m": {"A": 0.5, "B": float("nan")}}, "m", "m")
    assert sel.challenger is None and not sel.promoted
    assert _models(sel) == {"A": "lstm", "B": "seasonal_naive"}
    assert sel.series_mase["B"]["lstm"] is None
    assert sel.choices["B"][0]["evidence"]["left_out"] == ["lstm"]


def test_a_selection_record_of_one_model_per_series_still_reads() -> None:
    old = _select(BASE, None, None).to_dict()
    old["published"] = {"A": "naive", "B": "seasonal_naive"}
    del old["choices"]
    sel = Selection.from_dict(old)
    assert sel.published == {"A": {"all": "naive"}, "B": {"all": "seasonal_naive"}}
    assert sel.choices == {}


def test_latest_selection_is_strictly_before_the_date(tmp_path: Path) -> None:
    url = str(tmp_path / "models")
    rows, summary = _backtest({**BASE, "m1": {"A": 0.5}})
    assert registry.latest_selection(url, AS_OF) is None
    for day, version in [(dt.date(2020, 6, 1), "m1"), (AS_OF, "m2")]:
        sel = registry.select(summary, rows, day, None, version, BASELINES, horizon=3, config=BEST)
        registry.save_selection(url, sel)
    assert registry.latest_selection(url, AS_OF).champion == "m1"
    assert registry.latest_selection(url, AS_OF + dt.timedelta(days=1)).champion == "m2"
    assert registry.latest_selection(url, dt.date(2020, 6, 1)) is None
    again = registry.latest_selection(url, AS_OF)
    assert again == registry.Selection.from_dict(again.to_dict())
    # a rerun of a night that reuses its champion keeps the night's first record
    first = registry.latest_selection(url, AS_OF + dt.timedelta(days=1))
    rerun = registry.select(summary, rows, AS_OF, "m2", "m2", BASELINES, horizon=3, config=BEST)
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
