"""What the statistical baselines and the per-bucket selection add to a night, at 100 series.

Issue 16's goal: the nightly's extra cost of the new baselines (statsforecast's AutoETS and
AutoARIMA) and of the selection (per series and horizon bucket, Diebold-Mariano set,
combinations) stays under 20% of tonight's forecast stage, measured at 100 series.

Data: ``--series`` synthetic daily series
(``pipeline_lib.forecasting.model.testing.random_walk_features``, ``--days`` business days each;
every other one with a weekday pattern in its returns), the default settings (horizon 14, backtest
of 40 origins 2 rows apart), and the two nights before run beforehand (not timed): a small LSTM
trained, the backtests and selections, and the statistical baselines' cache filled as the nightly
leaves it. Then, alternating ``--repeats`` times, each from a copy of that state, tonight's model
stage as the product runs it, in this process, with the library calls of the forecast flow:

- **before**: the baselines naive, seasonal naive, linear and the rule before this issue (one
  choice per series over all horizons: ``margin``, without the test of the reference,
  ``selection.reference_alpha`` 0, on tonight's backtest alone, ``selection.record_windows``
  0);
- **after**: the default baselines (also ``ets`` and ``arima``) and the default selection (the
  evaluation record of the two nights before read beside tonight's backtest);
- **after, refit**: the same without each series' newest statistical fits in the cache (the
  fit point tonight reads, with its forecasts per origin), as if every series' fit point moved
  tonight; the older fits stay, so a series whose new fit point is not a search point
  (``backtest.statistical_search_every``) re-estimates the form its search point chose, and
  the others (about one in ``statistical_search_every``) search, as on an average refit night.
  A series' fit point moves once in ``backtest.statistical_refit_rows`` nights, on nights of
  its own, so a night refits that share of the series: the average night costs the warm one
  plus that share of the difference. (Before the form search was kept between fit points,
  this night deleted the whole cache: every refit was a search.)

Each night is a fine-tune (:func:`pipeline_lib.forecasting.retrain.train_or_reuse`), the backtest
and the selection (:func:`pipeline_lib.forecasting.champion.evaluate`) and tonight's forecast
(:func:`pipeline_lib.forecasting.nightly_forecasts.published_forecasts`). Printed: the median
seconds of each part, the extra seconds of a warm night, of a refit night and on average, and each
over the night's total (the forecast stage without its SQL writes and artifacts, which only make the
stage longer and the share smaller).
The load average is printed beside the figures: on a busy machine timings swing, the ratio
less so.

    python bench/selection_cost.py                  # 100 series x 1000 days, 2 repeats
    python bench/selection_cost.py --series 20 --repeats 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import SeriesConfig, Settings, load_settings
from pipeline_lib.forecasting import registry
from pipeline_lib.forecasting.champion import evaluate
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.nightly_forecasts import published_forecasts
from pipeline_lib.forecasting.retrain import train_or_reuse

STATISTICAL = ("ets", "arima")  # the new baselines, cached under models/baselines/<name>/


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--series", type=int, default=100)
    p.add_argument("--days", type=int, default=1000, help="business days per series")
    p.add_argument("--repeats", type=int, default=2)
    return p.parse_args(argv)


def make_features(n_series: int, n_days: int) -> pd.DataFrame:
    plain = random_walk_features(n_series=(n_series + 1) // 2, n_days=n_days, seed=1)
    weekly = random_walk_features(n_series=n_series // 2, n_days=n_days, seed=2, weekly_signal=0.01)
    weekly[schema.SERIES_ID] = "W" + weekly[schema.SERIES_ID].str[1:]
    return pd.concat([plain, weekly], ignore_index=True)


def settings_for(data_dir: str, series: list[str], before: bool) -> Settings:
    changes: dict = {
        "data_dir": data_dir,
        "series": [SeriesConfig(id=s) for s in series],
        "training": {"max_epochs": 3, "finetune_epochs": 2},
    }
    if before:
        changes["backtest"] = {"baselines": ["naive", "seasonal_naive", "linear"]}
        # the rule before issue 16: no Diebold-Mariano test of the reference and no
        # evaluation record either
        changes["selection"] = {
            "rule": "margin",
            "bucket_ends": [],
            "reference_alpha": 0.0,
            "record_windows": 0,
        }
    return load_settings(**changes)


def night(settings: Settings, features: pd.DataFrame, as_of: dt.date) -> dict[str, float]:
    t0 = time.perf_counter()
    trained, decision = train_or_reuse(settings, features, as_of)
    if decision.action != "finetune":
        raise SystemExit(f"expected a fine-tune, got {decision.action}: {decision.reason}")
    t1 = time.perf_counter()
    evaluation = evaluate(settings, features, as_of, trained, decision)
    t2 = time.perf_counter()
    published_forecasts(settings, evaluation, features, as_of)
    t3 = time.perf_counter()
    return {"train": t1 - t0, "backtest+selection": t2 - t1, "forecast": t3 - t2, "total": t3 - t0}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    features = make_features(args.series, args.days)
    series = sorted(features[schema.SERIES_ID].unique())
    dates = sorted(features[schema.DATE].unique())
    before_last, tonight = [pd.Timestamp(d).date() for d in dates[-3:-1]], dates[-1]
    tonight = pd.Timestamp(tonight).date()
    print(f"{len(series)} series x {args.days} business days; night {tonight}; load {_load()}")
    t = time.perf_counter()
    import statsforecast.models  # noqa: F401  (once per process; timed apart)

    print(f"statsforecast import: {time.perf_counter() - t:.1f} s (once per process)")
    runs = {"before": "before", "after": "after", "after, refit": "after"}
    every = settings_for(".", series, False).backtest.statistical_refit_rows  # a refit night
    results: dict[str, list[dict[str, float]]] = {k: [] for k in runs}
    with tempfile.TemporaryDirectory(prefix="bench_selection_cost_") as tmp:
        for label in ("before", "after"):
            # the two nights before: a champion to fine-tune and (after) the statistical
            # models' cache as a nightly leaves it (origins are 2 rows apart, so tonight's are
            # those of two nights ago, moved on by one)
            s = settings_for(f"{tmp}/{label}", series, label == "before")
            for day in before_last:
                trained, decision = train_or_reuse(s, features, day)
                evaluation = evaluate(s, features, day, trained, decision)
                registry.save_selection(paths.models_dir(s.data_dir), evaluation.selection)
        for r in range(args.repeats):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for label in order:
                folder = f"{tmp}/run-{r}-{label.replace(', ', '-').replace(' ', '-')}"
                shutil.copytree(f"{tmp}/{runs[label]}", folder)  # the same state every repeat
                if label.endswith("refit"):  # a refit night (backtest.statistical_refit_rows)
                    drop_newest_fits(f"{paths.models_dir(folder)}/baselines")
                s = settings_for(folder, series, label == "before")
                parts = night(s, features, tonight)
                results[label].append(parts)
                print(f"  repeat {r + 1} {label:<18} " + _line(parts) + f"  load {_load()}")
    med = {k: {p: statistics.median(x[p] for x in v) for p in v[0]} for k, v in results.items()}
    print("\nmedian seconds            " + "".join(f"{p:>20}" for p in med["after"]))
    for label in runs:
        print(f"{label:<26}" + "".join(f"{med[label][p]:>20.1f}" for p in med[label]))
    extra = {}
    for label in ("after", "after, refit"):
        parts = ("backtest+selection", "forecast")
        extra[label] = sum(med[label][p] - med["before"][p] for p in parts)
    total = med["after"]["total"]
    amortised = extra["after"] + (extra["after, refit"] - extra["after"]) / every
    print(
        f"\nextra of the new baselines and the selection (backtest, selection, forecast):\n"
        f"  a night with the cache warm: {extra['after']:.1f} s = "
        f"{extra['after'] / total:.1%} of the night's model stage ({total:.1f} s)\n"
        f"  every series refitted (each series once in {every} nights): "
        f"{extra['after, refit']:.1f} s = "
        f"{extra['after, refit'] / med['after, refit']['total']:.1%}\n"
        f"  on average: {amortised:.1f} s = {amortised / total:.1%}   (goal < 20%)"
    )
    print(f"load average now: {_load()}")
    return 0


def drop_newest_fits(baselines: str) -> None:
    """Remove, per statistical model and series, the cached fit at the series' newest fit point
    (the one tonight reads) with its forecasts per origin, as if every series' fit point had
    moved tonight; the older fits stay, as a real refit night finds them (among them the search
    point whose form a fit point between searches re-estimates: ``statistical_search_every``).
    The series whose newest fit point is a search point search again, about one in
    ``statistical_search_every``, as on an average refit night."""
    for name in STATISTICAL:
        for folder in Path(baselines, name).glob("*"):
            newest = max((int(f.name.split("-", 1)[0]) for f in folder.glob("*.pkl")), default=None)
            if newest is not None:
                for f in folder.glob(f"{newest}-*.pkl"):
                    f.unlink()


def _line(parts: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
