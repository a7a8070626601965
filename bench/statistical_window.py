"""The baselines' fit windows: accuracy and cost of fitting AutoETS and AutoARIMA on the newest
``backtest.statistical_fit_rows`` rows instead of the whole history, and the linear model on
``backtest.linear_fit_rows`` (one window, or several whose forecasts are averaged: ``56+728``).

For each window (0: every row, the behaviour before the setting) and each night, each model is
fitted as the nightly fits it (:func:`pipeline_lib.forecasting.backtest.make_baseline`, the fit
point at the night) on the rows dated on or before the night, then forecasts the horizon after
it; the forecasts are scored out of sample against the feature ``y`` of their target dates
(:func:`pipeline_lib.evaluation.scoring.score_forecasts`, MAE and MASE on the naive scale). The
fits are timed (CPU seconds of this process; no cache). Data as ``bench/accuracy.py`` loads it
(the product's ingest, validation, curate and features, into a temporary folder).

Run it with the project's environment::

    python bench/statistical_window.py                    # the electricity sample, 2019-2020
    python bench/statistical_window.py --models linear --windows 0,728,56+84+1092+1456
    python bench/statistical_window.py --models linear --windows 1820 --asinh-rows 28,56,91
    python bench/statistical_window.py --config "" --start 2015-01-05 \\
        --data-end 2015-12-31 --windows 1000 --refit-every 1,20,60   # the bundled stocks
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import build_features, nights  # noqa: E402

from pipeline_lib import schema  # noqa: E402
from pipeline_lib.config import load_settings  # noqa: E402
from pipeline_lib.evaluation.scoring import score_forecasts
from pipeline_lib.forecasting.backtest import FitWindows, make_baseline  # noqa: E402

ELECTRICITY = "pipeline_lib/sample_data/electricity.toml"


def walk_forward_parser(doc: str, every: int) -> argparse.ArgumentParser:
    """The arguments of a walk-forward over the electricity sample's 2019-2020 nights."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--config", default=ELECTRICITY)
    p.add_argument("--data-end", type=dt.date.fromisoformat, default=dt.date(2020, 12, 31))
    p.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2019, 1, 2))
    p.add_argument(
        "--every", type=int, default=every, help=f"business days between nights ({every})"
    )
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = walk_forward_parser(__doc__, 10)
    p.add_argument(
        "--windows",
        default="0,500,750,1000,1500",
        help="fit windows in rows (0: every row); linear only: a+b+... averages several",
    )
    p.add_argument("--models", default="ets,arima")
    p.add_argument(
        "--asinh-rows",
        default=None,
        help="linear only: the prices that centre and scale its asinh scale (the "
        "LinearLags default when not given; 0: every row); several to compare: 28,56,91",
    )
    p.add_argument(
        "--refit-every",
        default=None,
        help="rows between the fit points of ets and arima (default: the config's "
        "backtest.statistical_refit_rows); several to compare: 1,20,60 (fits kept in a cache, "
        "as the nightly keeps them, so a fit point shared by nights is fitted once and the "
        "CPU seconds are what the nights cost)",
    )
    p.add_argument(
        "--search-every",
        default=None,
        help="fit points of ets and arima per model search (default: the config's "
        "backtest.statistical_search_every); several to compare: 1,4",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(args.config or None, data_dir=tmp)  # "": the stocks
        features = build_features(settings, args.data_end)
    horizon, band = settings.horizon, settings.model.band
    last = (pd.Timestamp(args.data_end) - pd.offsets.BDay(horizon)).date()
    dates = nights(args.start, last, args.every)
    actuals = features[[schema.SERIES_ID, schema.DATE, schema.Y]]
    windows = [tuple(int(w) for w in spec.split("+")) for spec in args.windows.split(",")]
    print(f"{args.config}: {features[schema.SERIES_ID].nunique()} series, {len(dates)} nights "
          f"{dates[0]}..{dates[-1]}, horizon {horizon}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    rows = []
    refit = args.refit_every or str(settings.backtest.statistical_refit_rows)
    everies = [int(e) for e in refit.split(",")]
    search = args.search_every or str(settings.backtest.statistical_search_every)
    searches = [int(e) for e in search.split(",")]
    scales = [None] if args.asinh_rows is None else [int(a) for a in args.asinh_rows.split(",")]
    variants = [
        (name, window, every, search_every, asinh)
        for name in args.models.split(",")
        for window in windows
        for every in (everies if name in ("ets", "arima") else [0])
        for search_every in (searches if name in ("ets", "arima") else [1])
        for asinh in (scales if name == "linear" else [None])
    ]
    for name, window, every, search_every, asinh in variants:
        with tempfile.TemporaryDirectory() as cache:
            parts, seconds = [], 0.0
            for night in dates:
                history = features.loc[features[schema.DATE] <= pd.Timestamp(night)]
                fit = FitWindows(window[0], window, every or 1, search_every)
                model = make_baseline(name, band, night, cache, settings.feature_set, fit)
                if asinh is not None:
                    model.asinh_rows = asinh  # type: ignore[attr-defined]  # LinearLags
                started = time.process_time()
                model.fit(history)
                out = model.predict(night, horizon, settings.frequencies)
                seconds += time.process_time() - started
                parts.append(out.assign(model=name))
            forecasts = pd.concat(parts, ignore_index=True)
            scores = score_forecasts(
                forecasts, actuals, features.loc[features[schema.DATE] < pd.Timestamp(dates[0])]
            )
            for h, label in (("1", "h=1"), ("ALL", "h=1-14")):
                at = scores.loc[scores["horizon"] == h]
                rows.append(
                    {
                        "model": name, "window": "+".join(str(w or "all") for w in window),
                        "refit every": every or "", "search every": search_every,
                        "asinh rows": "" if asinh is None else asinh or "all",
                        "scope": label,
                        "MAE": at["mae"].mean(), "MASE": at["mase"].mean(),
                        "fit+forecast CPU s": seconds,
                    }
                )  # fmt: skip
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
