"""The retraining policy's false alarms and detection, and what it does on the bundled data.

Usage: ``python bench/retrain_policy.py [--seeds 400] [--decay-seeds 200] [--no-sample]``
(about 3.5 min on 2 cores, most of it the bundled-sample replay). The policy is
``[retrain_policy]`` at its defaults (pipeline_lib.monitoring.policy): a watched (series, feature)
drifts when 3 of its 5 thresholded metrics agree, a series decays when its all-horizons mase_ratio
or coverage_gap is flagged, and a night triggers at 1 new drifted pair or 2 new decayed series.

1. Input drift, synthetic (as ``bench/drift_false_alarms.py``: 756 business days of reference,
   63 recent): for each stationary log-return process, the share of series whose log return
   counts as drifted, and of panels of 4 series (the bundled sample's size) that trigger;
   then the same with the recent window's mean moved or its spread widened.
2. Decay, synthetic: calibrated nightly naive forecasts of random walks (as in
   ``drift_false_alarms.py``): the share of series counted as decayed and of 4-series panels
   that trigger, calibrated and with the live errors doubled.
3. The bundled sample, every business day of 2015: the product's naive forecasts (its
   published model on that sample) with their conformal bands are "published" each night,
   the nightly backtest of naive is the decay reference, and the input drift is measured
   against the training window of the last full training. The policy decides each night, with
   the 28-day cadence, the 7-day cooldown and the flags each full training recorded; the script
   prints how often each series was flagged, and how many full trainings each trigger caused,
   against the cadence alone.

The same seeds and data give the same figures; no data folder and no database are touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drift_false_alarms import (  # noqa: E402  (a sibling script)
    N_RECENT,
    N_REF,
    stationary,
    walk_night,
)

from pipeline_lib import schema
from pipeline_lib.config import DriftConfig, RetrainPolicyConfig, load_settings  # noqa: E402
from pipeline_lib.evaluation.scoring import score_rows
from pipeline_lib.forecasting.backtest import make_baseline, plan_backtest  # noqa: E402
from pipeline_lib.monitoring import policy  # noqa: E402
from pipeline_lib.monitoring.decay import decay_metrics  # noqa: E402
from pipeline_lib.monitoring.drift import drift_table  # noqa: E402
from pipeline_lib.monitoring.monitor import decay_rows, drift_windows  # noqa: E402

PANEL = 4  # series per panel: the bundled sample's
PROCESSES = ["returns N(0,1)", "returns t(4)", "GARCH(1,1) returns"]
CHANGES = [("stationary", 0.0, 1.0), ("mean + 0.5 std", 0.5, 1.0), ("mean + 1 std", 1.0, 1.0),
           ("std x 1.5", 0.0, 1.5), ("std x 2", 0.0, 2.0)]  # fmt: skip


def _panel_rate(flagged: np.ndarray, count: int) -> float:
    """Share of consecutive panels of PANEL series with at least ``count`` flagged."""
    n = flagged.size // PANEL * PANEL
    return float((flagged[:n].reshape(-1, PANEL).sum(axis=1) >= count).mean())


def input_rates(kind: str, n_series: int, seed: int, cfg: DriftConfig, pol: RetrainPolicyConfig):
    """Per change: (share of series drifted, share of panels triggering)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=N_REF + N_RECENT)
    x = stationary(kind, n_series, dates.size, rng)
    std = x[:, :N_REF].std(axis=1, ddof=1, keepdims=True)
    mean = x[:, :N_REF].mean(axis=1, keepdims=True)
    ids = np.array([f"S{i:04d}" for i in range(n_series)])
    out = {}
    for label, shift, scale in CHANGES:
        moved = x.copy()
        recent = moved[:, N_REF:]
        moved[:, N_REF:] = mean + (recent - mean) * scale + shift * std
        features = pd.DataFrame(
            {
                schema.SERIES_ID: np.repeat(ids, dates.size),
                schema.DATE: np.tile(dates, n_series),
                "log_return": moved.ravel(),
            }
        )
        rows = drift_table(
            features, ["log_return"], (dates[0].date(), dates[N_REF - 1].date()),
            (dates[N_REF].date(), dates[-1].date()), **cfg.table_options(),
        )  # fmt: skip
        drifted = {f.series_id for f in policy.drifted_pairs(rows, pol)}
        flagged = np.isin(ids, list(drifted))
        out[label] = (float(flagged.mean()), _panel_rate(flagged, pol.input_drift_count))
    return out


def decay_rates(n_seeds: int, factor: float, cfg: DriftConfig, pol: RetrainPolicyConfig):
    """(share of series decayed, share of panels triggering) for calibrated naive forecasts
    of random walks, their live errors times ``factor``."""
    flagged = []
    for seed in range(n_seeds):
        errors, backtest, as_of = walk_night(seed, cfg, factor)
        rows = decay_metrics(
            errors, backtest, as_of.date(), window_days=cfg.decay_window_days,
            nominal_coverage=0.8, mase_ratio_threshold=cfg.mase_ratio_threshold,
            coverage_gap_threshold=cfg.coverage_gap_threshold, min_realised=cfg.min_realised,
        )  # fmt: skip
        flagged.append(bool(policy.decayed_series(rows, pol)))
    arr = np.array(flagged)
    return float(arr.mean()), _panel_rate(arr, pol.decay_count)


def sample_nights(pol: RetrainPolicyConfig) -> None:
    """Part 3 of the module doc."""
    from accuracy import build_features  # the bench's own ingest of the bundled sample

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=tmp)
        features = build_features(settings, dt.date(2015, 12, 31))
    cfg, quantiles = settings.drift, list(settings.model.band)
    nights = [d.date() for d in pd.bdate_range("2015-01-02", "2015-12-31")]
    history = features[[schema.SERIES_ID, schema.DATE, schema.Y]]
    naive = make_baseline("naive", quantiles, feature_set=settings.feature_set).fit(history)
    frequencies = settings.frequencies
    origins = {  # every date from 2014 on: the forecasts the nightly published
        str(sid): dates[dates >= np.datetime64("2014-01-01")]
        for sid, part in history.groupby(schema.SERIES_ID)
        for dates in [part[schema.DATE].to_numpy().astype("datetime64[ns]")]
    }
    live = naive.predict_at(origins, settings.horizon, frequencies).assign(model="naive")
    made = pd.to_datetime(live["forecast_date"]).dt.date
    min_train = settings.model.lookback + settings.horizon
    last_full, counted, fulls, known = nights[0], [], {"cadence": 0}, []
    also = pol.model_copy(update={"watch_features": [schema.Y, "temp_mean"]})
    for night in nights:
        train_start = last_full - dt.timedelta(days=settings.training.train_window_days - 1)
        reference, recent = drift_windows(train_start, night, cfg.recent_days)
        features_in = [schema.Y, "temp_mean", *pol.watch_features]
        drifted = drift_table(features, features_in, reference, recent, **cfg.table_options())
        published = live.loc[(made < night) & (made >= night - dt.timedelta(days=400))]
        plan = plan_backtest(features, night, settings.horizon, settings.backtest, min_train)
        upto = history.loc[history[schema.DATE] <= pd.Timestamp(night)]
        backtest = naive.predict_at(plan.origins, settings.horizon, frequencies)
        scored = score_rows(backtest.assign(model="naive"), upto, upto, 1, quantiles)
        decayed = decay_rows(features, published, scored, night, cfg, quantiles)
        rows = pd.concat([drifted, decayed], ignore_index=True)
        verdict = policy.assess(rows, pol, known)
        counted += [(night, "drift", f.series_id) for f in verdict.drifted]
        counted += [(night, "decay", f.series_id) for f in verdict.decayed]
        counted += [
            (night, f"{f.feature} drift", f.series_id) for f in policy.drifted_pairs(rows, also)
        ]
        age = (night - last_full).days
        if age >= settings.training.retrain_every_days:
            fulls["cadence"] += 1
            last_full, known = night, verdict.keys()
        elif verdict.retrain and age >= pol.cooldown_days:
            fulls[verdict.trigger] = fulls.get(verdict.trigger, 0) + 1
            last_full, known = night, verdict.keys()
    table = pd.DataFrame(counted, columns=["night", "kind", "series_id"])
    shares = table.groupby(["kind", "series_id"]).night.nunique().unstack(fill_value=0)
    print(
        f"\nBundled sample, {len(nights)} nights of 2015: share of nights each series was "
        "counted (drift and decay: what the policy counts; y and temp_mean drift: what it "
        "would count if they were watched)"
    )
    print((shares / len(nights)).map(lambda v: f"{v:.0%}").to_string())
    cadence_only, last = 0, nights[0]
    for night in nights:
        if (night - last).days >= settings.training.retrain_every_days:
            cadence_only, last = cadence_only + 1, night
    print(f"full trainings in 2015 with the policy: {fulls}; the cadence alone: {cadence_only}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=400, help="series per process (x4 panels)")
    parser.add_argument("--decay-seeds", type=int, default=200, help="random walks for decay")
    parser.add_argument("--no-sample", action="store_true", help="skip the bundled-data part")
    args = parser.parse_args()
    cfg, pol = DriftConfig(), RetrainPolicyConfig()
    began = time.perf_counter()
    print(
        f"Policy: watch {pol.watch_features}, {pol.min_agreeing_metrics} of 5 metrics agree, "
        f"trigger at {pol.input_drift_count} drifted pair(s) or {pol.decay_count} decayed "
        f"series; panels of {PANEL} series"
    )
    print(f"\nInput drift (log return), {args.seeds} series per process: series drifted / "
          "panels triggered")  # fmt: skip
    print(f"{'':<22}" + "".join(f"{label:>22}" for label, _, _ in CHANGES))
    for i, kind in enumerate(PROCESSES):
        rates = input_rates(kind, args.seeds, i, cfg, pol)
        cells = "".join(f"{rates[k][0]:>12.1%} /{rates[k][1]:>7.1%}" for k, _, _ in CHANGES)
        print(f"{kind:<22}{cells}")
    print(f"\nDecay, {args.decay_seeds} random walks, calibrated naive forecasts: series "
          "decayed / panels triggered")  # fmt: skip
    for factor, label in ((1.0, "calibrated"), (2.0, "errors x 2")):
        series, panels = decay_rates(args.decay_seeds, factor, cfg, pol)
        print(f"{label:<22}{series:>12.1%} /{panels:>7.1%}")
    if not args.no_sample:
        sample_nights(pol)
    print(f"\n{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
