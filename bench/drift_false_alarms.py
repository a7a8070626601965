"""False alarms and detection of the drift and decay checks at the DriftConfig defaults.

Usage: ``python bench/drift_false_alarms.py [--seeds 500] [--decay-seeds 200]`` (about 45 s).

Input drift (:func:`pipeline_lib.monitoring.drift.drift_table`): for each stationary process,
``--seeds`` seeded series of 819 business days, the first 756 (about 3 years, the champion's
training window) as reference and the last 63 (about 90 days) as the recent window. It prints the
share of series each metric flags (false alarms), the same with the recent window's mean moved by
0.5 and 1 reference std (detection), and the share of (series, feature) pairs flagged by at
least one metric. ``ks`` counts the p-value's flag once.

Performance decay (:func:`pipeline_lib.monitoring.decay.decay_metrics`): ``--decay-seeds`` random
walks forecast every business day by the naive forecast with exact Gaussian 80% intervals (a model
that is as good as its backtest and calibrated), the backtest being 40 origins 2 days apart
just before the 90-day window, as the nightly backtest. It prints how often ``mase_ratio`` and
``coverage_gap`` flag on all horizons together and per horizon (the mean over the 14), and the
same when the live errors are doubled.

The same seeds give the same figures; the run touches no data folder and no database.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from pipeline_lib.config import DriftConfig
from pipeline_lib.monitoring.decay import ERROR_FEATURE, decay_metrics, realised_errors
from pipeline_lib.monitoring.drift import drift_table

N_REF, N_RECENT = 756, 63  # business days: ~3 years of reference, ~90 days recent
SHIFTS = (0.0, 0.5, 1.0)  # planted mean shifts, in reference std
METRICS = ["psi", "ks_pvalue", "wasserstein_std", "mean_shift", "std_ratio"]
LABELS = {"ks_pvalue": "ks", "wasserstein_std": "wass_std"}
HORIZON, Z90 = 14, 1.2815515655446004  # the 10% and 90% quantiles: mean -+ Z90 std


def stationary(kind: str, n_series: int, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """[n_series, n_days] draws of a stationary process, started in its stationary law."""
    if kind == "returns N(0,1)":  # log returns of a Gaussian random walk
        return rng.normal(size=(n_series, n_days))
    if kind == "returns t(4)":  # fat-tailed returns
        return rng.standard_t(4, size=(n_series, n_days))
    if kind.startswith("AR(1)"):  # a persistent feature: rolling statistics, weather anomalies
        phi = float(kind.split()[-1])
        x = np.empty((n_series, n_days))
        x[:, 0] = rng.normal(size=n_series) / np.sqrt(1 - phi**2)
        e = rng.normal(size=(n_series, n_days))
        for t in range(1, n_days):
            x[:, t] = phi * x[:, t - 1] + e[:, t]
        return x
    if kind == "GARCH(1,1) returns":  # volatility clustering, as daily stock returns
        omega, alpha, beta = 0.05, 0.08, 0.90
        var = np.full(n_series, omega / (1 - alpha - beta))
        x = np.empty((n_series, n_days))
        for t in range(n_days):
            x[:, t] = np.sqrt(var) * rng.normal(size=n_series)
            var = omega + alpha * x[:, t] ** 2 + beta * var
        return x
    raise ValueError(kind)


PROCESSES = ["returns N(0,1)", "returns t(4)", "GARCH(1,1) returns", "AR(1) 0.5", "AR(1) 0.9"]


def drift_rates(kind: str, n_series: int, cfg: DriftConfig, seed: int) -> pd.DataFrame:
    """Share of series flagged, per shift (rows) and metric (columns, plus ``any``)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=N_REF + N_RECENT)
    x = stationary(kind, n_series, dates.size, rng)
    std = x[:, :N_REF].std(axis=1, ddof=1, keepdims=True)
    columns = {}
    for shift in SHIFTS:
        moved = x.copy()
        moved[:, N_REF:] += shift * std
        columns[f"shift {shift}"] = moved.ravel()
    features = pd.DataFrame(
        {
            "series_id": np.repeat([f"S{i:04d}" for i in range(n_series)], dates.size),
            "date": np.tile(dates, n_series),
            **columns,
        }
    )
    out = drift_table(
        features,
        list(columns),
        (dates[0].date(), dates[N_REF - 1].date()),
        (dates[N_REF].date(), dates[-1].date()),
        **cfg.table_options(),
    )
    rates = out.pivot_table(index="feature", columns="metric", values="is_drift", aggfunc="mean")
    pairs = out.groupby(["series_id", "feature"])["is_drift"].any()
    rates["any"] = pairs.groupby(level="feature").mean()
    return rates.loc[list(columns), [*METRICS, "any"]]


def walk_night(
    seed: int, cfg: DriftConfig, error_factor: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """One random walk: its realised nightly naive forecasts over the decay window (errors
    times ``error_factor``), the backtest rows just before the window, and the as-of date."""
    rng = np.random.default_rng(seed)
    n_days = 600
    dates = pd.bdate_range("2022-01-03", periods=n_days)
    y = 100 + np.cumsum(rng.normal(size=n_days))
    as_of = dates[-1]
    window_start = as_of - pd.Timedelta(days=cfg.decay_window_days - 1)
    h = np.arange(1, HORIZON + 1)

    def forecasts(origins: np.ndarray, factor: float) -> pd.DataFrame:
        f, hh = np.repeat(origins, HORIZON), np.tile(h, origins.size)
        keep = f + hh < n_days  # targets observed by as_of
        f, hh = f[keep], hh[keep]
        t = f + hh
        yhat = y[f] + (factor - 1) * (y[f] - y[t])  # the naive forecast's error times factor
        half = Z90 * np.sqrt(hh)
        return pd.DataFrame(
            {
                "series_id": "S",
                "forecast_date": dates[f],
                "target_date": dates[t],
                "horizon": hh,
                "yhat": yhat,
                "yhat_lower": yhat - half,
                "yhat_upper": yhat + half,
                "model": "naive",
            }
        )

    first_target = int(np.searchsorted(dates, window_start))
    live = forecasts(np.arange(first_target - HORIZON, n_days - 1), error_factor)
    actuals = pd.DataFrame({"series_id": "S", "target_date": dates, "actual": y})
    errors = realised_errors(live, actuals, as_of.date())
    # the backtest: 40 origins 2 days apart whose targets all precede the window; its MASE
    # scale is the naive error of the history up to its first origin
    last_origin = first_target - 1 - HORIZON
    origins = np.arange(last_origin - 2 * 39, last_origin + 1, 2)
    backtest = realised_errors(forecasts(origins, 1.0), actuals)
    scale = float(np.mean(np.abs(np.diff(y[: origins[0] + 1]))))
    return errors, backtest.assign(scaled_error=backtest["abs_error"] / scale), as_of


def decay_rates(n_seeds: int, cfg: DriftConfig, error_factor: float) -> dict[str, float]:
    """Share of seeds flagged by mase_ratio and coverage_gap, all horizons and per horizon."""
    flags: dict[tuple[bool, str], list[float]] = {}
    for seed in range(n_seeds):
        errors, backtest, as_of = walk_night(seed, cfg, error_factor)
        out = decay_metrics(
            errors,
            backtest,
            as_of.date(),
            window_days=cfg.decay_window_days,
            nominal_coverage=0.8,
            mase_ratio_threshold=cfg.mase_ratio_threshold,
            coverage_gap_threshold=cfg.coverage_gap_threshold,
            min_realised=cfg.min_realised,
        )
        out = out.loc[out["metric"].isin(["mase_ratio", "coverage_gap"])]
        for (all_h, metric), part in out.groupby([out["feature"] == ERROR_FEATURE, "metric"]):
            flags.setdefault((bool(all_h), str(metric)), []).append(part["is_drift"].mean())
    return {f"{m} {'all' if a else 'per h'}": float(np.mean(v)) for (a, m), v in flags.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500, help="series per process")
    parser.add_argument("--decay-seeds", type=int, default=200, help="random walks for decay")
    args = parser.parse_args()
    cfg = DriftConfig()
    began = time.perf_counter()
    print(
        f"Input drift at the defaults: psi > {cfg.psi_threshold} ({cfg.psi_bins} bins), "
        f"ks p < {cfg.ks_pvalue_threshold}, wasserstein_std > {cfg.wasserstein_threshold}, "
        f"|mean_shift| > {cfg.mean_shift_threshold}, std_ratio outside "
        f"[{1 / cfg.std_ratio_threshold:.2f}, {cfg.std_ratio_threshold}]"
    )
    print(f"{args.seeds} series per process; reference {N_REF} business days, recent {N_RECENT}")
    results = {k: drift_rates(k, args.seeds, cfg, seed=i) for i, k in enumerate(PROCESSES)}
    head = "".join(f"{LABELS.get(m, m):>11}" for m in [*METRICS, "any"])
    for shift in SHIFTS:
        label = "false alarms (stationary)" if shift == 0 else f"detection: mean + {shift} std"
        print(f"\n{label:<28}{head}")
        for kind, rates in results.items():
            row = rates.loc[f"shift {shift}"]
            print(f"{kind:<28}" + "".join(f"{row[m]:>10.1%} " for m in [*METRICS, "any"]))
    print(
        f"\nPerformance decay at the defaults: mase_ratio > {cfg.mase_ratio_threshold}, "
        f"|coverage_gap| > {cfg.coverage_gap_threshold}, window {cfg.decay_window_days} days, "
        f"min_realised {cfg.min_realised}; naive forecasts of {args.decay_seeds} random walks, "
        f"horizons 1-{HORIZON}, exact 80% intervals"
    )
    keys = ["mase_ratio all", "mase_ratio per h", "coverage_gap all", "coverage_gap per h"]
    print(f"{'':<28}" + "".join(f"{k:>20}" for k in keys))
    for factor, label in ((1.0, "false alarms (calibrated)"), (2.0, "detection: errors x 2")):
        rates = decay_rates(args.decay_seeds, cfg, factor)
        print(f"{label:<28}" + "".join(f"{rates.get(k, float('nan')):>19.1%} " for k in keys))
    print(f"\n{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
