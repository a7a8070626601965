"""The hybrid LSTM's parts, walk-forward: its linear base alone, the base plus the network's
correction with and without the gate (``model.gate``), each with the base refitted for the
night on the model's training window (``train_window_days``, the behaviour before
``model.base_refit_rows``) or on the newest ``model.base_refit_rows`` rows, against the
per-origin linear baseline with the same inputs.

Each night, for each gate setting, a model is trained in full as the nightly trains one
(:func:`pipeline_lib.forecasting.retrain.train_or_reuse` on a fresh models folder: training targets
stop at the night's backtest hold-out, ``backtest.last_n`` origins before it), its base is refitted
up to the night (:func:`pipeline_lib.forecasting.model.base.refit_to`) and it forecasts the horizon
after the night; "base alone" is the same model with the network's last layer zeroed (its median is
the base's forecast). The linear baseline is fitted as the nightly fits it. Every forecast is scored
out of sample against the feature ``y`` of its target dates (MAE; the table's last rows give
each column's mean ratio to the linear baseline's MAE and the series where it is lower). Data
as ``bench/accuracy.py`` loads it (the product's ingest, validation, curate and features).

Run it with the project's environment::

    python bench/hybrid_gate.py                   # the electricity sample, a night every 40 days
    python bench/hybrid_gate.py --every 10        # 51 nights, about 4 times as long
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import build_features, nights  # noqa: E402
from statistical_window import walk_forward_parser  # noqa: E402

from pipeline_lib import schema  # noqa: E402
from pipeline_lib.config import Settings, load_settings  # noqa: E402
from pipeline_lib.forecasting.backtest import FitWindows, make_baseline  # noqa: E402
from pipeline_lib.forecasting.model.base import refit_to  # noqa: E402
from pipeline_lib.forecasting.model.forecast import predict  # noqa: E402
from pipeline_lib.forecasting.model.trained import TrainedModel  # noqa: E402
from pipeline_lib.forecasting.retrain import train_or_reuse  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return walk_forward_parser(__doc__, 40).parse_args(argv)


def bare(model: TrainedModel) -> TrainedModel:
    """The model with the network's last layer zeroed: its median is its base's forecast."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.module.head[-1].weight.zero_()
        out.module.head[-1].bias.zero_()
    return out


def night_forecasts(
    settings: Settings, rows: pd.DataFrame, night: dt.date, root: str
) -> list[pd.DataFrame]:
    """Every variant's forecast from ``night``, tagged with its name in ``model``."""
    out = []
    for gate in (False, True):
        s = settings.model_copy(
            update={
                "data_dir": tempfile.mkdtemp(dir=root),
                "model": settings.model.model_copy(update={"gate": gate}),
            }
        )
        trained, _ = train_or_reuse(s, rows, night)
        for window, rows_kept in (("train window", None), ("refit rows", s.model.base_refit_rows)):
            tonight = refit_to(trained, rows, night, rows=rows_kept)
            name = f"hybrid, gate {'on' if gate else 'off'}, {window}"
            out.append(predict(tonight, rows, night, s.frequencies).assign(model=name))
            if gate:  # the base does not depend on the gate
                base = predict(bare(tonight), rows, night, s.frequencies)
                out.append(base.assign(model=f"base alone, {window}"))
    linear = make_baseline(
        "linear", settings.model.band, night, None, settings.feature_set,
        FitWindows.of(settings.backtest),
    ).fit(rows)  # fmt: skip
    out.append(linear.predict(night, settings.horizon, settings.frequencies).assign(model="linear"))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(args.config, data_dir=tmp)
        features = build_features(settings, args.data_end)
        last = (pd.Timestamp(args.data_end) - pd.offsets.BDay(settings.horizon)).date()
        dates = nights(args.start, last, args.every)
        n = features[schema.SERIES_ID].nunique()
        print(f"{args.config}: {n} series, {len(dates)} nights {dates[0]}..{dates[-1]}, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        parts, started = [], time.perf_counter()
        for night in dates:
            rows = features.loc[features[schema.DATE] <= pd.Timestamp(night)]
            parts += night_forecasts(settings, rows.reset_index(drop=True), night, tmp)
            print(f"  {night} ({time.perf_counter() - started:.0f} s)", flush=True)
    forecasts = pd.concat(parts, ignore_index=True)
    forecasts["target_date"] = pd.to_datetime(forecasts["target_date"])
    actual = features[[schema.SERIES_ID, schema.DATE, schema.Y]].rename(
        columns={schema.DATE: "target_date"}
    )
    scored = forecasts.merge(actual, on=[schema.SERIES_ID, "target_date"])
    scored["ae"] = (scored["yhat"] - scored[schema.Y]).abs()
    for label, part in (("h=1", scored.loc[scored["horizon"] == 1]), ("h=1-14", scored)):
        table = part.pivot_table(index="model", columns=schema.SERIES_ID, values="ae")
        ratio = table.div(table.loc["linear"], axis=1)
        table["mean ratio to linear"] = ratio.mean(axis=1)
        table["series below linear"] = (ratio < 1).sum(axis=1).astype(int)
        with pd.option_context("display.width", 250, "display.float_format", "{:.3f}".format):
            print(f"\nMAE, {label}\n{table.to_string()}")
    print(f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
