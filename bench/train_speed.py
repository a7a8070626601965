"""Training throughput of our LSTM against neuralforecast's LSTM on the same data.

What is measured: windows per second during training, ``timed steps * batch / seconds``, for

- OURS: :class:`pipeline_lib.forecasting.model.lstm.LSTMForecaster` (built with the project's
  ``hyperparameters``/``build_module`` and ``ModelConfig`` defaults for what is not set here)
  trained by :func:`pipeline_lib.forecasting.model.steps.train_step` after ``set_seed``, with the
  Adam of :func:`pipeline_lib.forecasting.model.steps.make_optimizer` and the
  ``TrainingConfig`` gradient clipping as in ``fit``, on windows from
  :func:`pipeline_lib.forecasting.model.windows.make_windows`. Each step takes the next ``batch``
  windows of a shuffled order (a new shuffle when fewer than ``batch`` are left), as ``fit`` does.
- NEURALFORECAST: ``neuralforecast.models.LSTM`` trained by ``NeuralForecast.fit``, run by
  ``bench/_neuralforecast_side.py`` in the separate environment ``bench/.venv-nf``; its docstring
  says how its arguments are matched to ours (same window, hidden size, windows per step,
  steps, quantile loss, learning rate, gradient clipping and thread count, no validation).

Data: the four bundled daily price series (``pipeline_lib/sample_data/prices_*.csv``, read through
``pipeline_lib.ingest.sources.sample``), target = close price standard-scaled per series, one step
per observed row. Both sides get the same scaled series; the input is the target alone (no
covariates or calendar features), since that is what both models share.

Only the training loop is timed: both sides train ``steps`` steps, the first ``warmup`` of which
are not timed, so the time runs from the end of the last warm-up step to the end of the last
step. On the neuralforecast side a Lightning callback takes the stamps, so Lightning's per-step
work is included and its set-up is not; the whole ``fit()`` time is reported beside it (ours:
windowing, model construction and the loop). The two sides are measured in the same run, in
alternating order (ours first on odd repeats, neuralforecast first on even ones), and the
medians over the repeats give the ratio.

Each step is also timed on its own. A shared machine can stall a run for a while (with as many
torch threads as cores, one descheduled thread holds up every parallel region), which drags the
whole-loop figure down; the median step time is hardly moved by that, so the table also gives
windows/s at the median step and a second ratio from it, and the script warns when the
repeats of a side disagree by more than 1.5x. Re-run, or use ``--threads 1``, if it does.

Run it with the project's environment, after creating the bench environment once::

    bash bench/setup_neuralforecast.sh      # once: bench/.venv-nf with neuralforecast
    python bench/train_speed.py             # 300 steps, batch 128, hidden 32, 5 repeats
    python bench/train_speed.py --steps 500 --batch 256 --repeats 3

It never installs anything: without ``bench/.venv-nf`` it says how to create it and exits 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.forecasting.model.steps import make_optimizer, set_seed, train_step
from pipeline_lib.forecasting.model.trained import build_module, hyperparameters
from pipeline_lib.forecasting.model.window_set import SeriesArray, WindowSet
from pipeline_lib.forecasting.model.windows import make_windows
from pipeline_lib.ingest.sources.sample import SampleSource, available

BENCH = Path(__file__).resolve().parent
NF_PYTHON = BENCH / ".venv-nf" / "bin" / "python"
NF_SIDE = BENCH / "_neuralforecast_side.py"
NF_TIMEOUT_S = 1800
QUANTILES = (0.1, 0.5, 0.9)
NOISY = 1.5  # warn when the best and worst repeat of a side differ by more than this factor


@dataclass(frozen=True)
class Settings:
    steps: int
    warmup: int
    batch: int
    hidden: int
    lookback: int
    horizon: int
    threads: int
    lr: float
    seed: int


@dataclass(frozen=True)
class Timing:
    """One training run: ``len(step_seconds)`` timed steps of ``batch`` windows each, taking
    ``loop_seconds`` in all; ``fit_seconds`` is the whole training call."""

    batch: int
    loop_seconds: float
    step_seconds: tuple[float, ...]
    fit_seconds: float

    @property
    def timed_steps(self) -> int:
        return len(self.step_seconds)

    @property
    def windows_per_second(self) -> float:
        return self.timed_steps * self.batch / self.loop_seconds

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.loop_seconds / self.timed_steps

    @property
    def median_step_windows_per_second(self) -> float:
        return self.batch / statistics.median(self.step_seconds)


def load_prices() -> pd.DataFrame:
    """``unique_id, ds, y, date``: each bundled price series' close, standard-scaled per series,
    with ``ds`` the row number within the series (one step per observed trading day)."""
    frames = []
    for symbol in available(schema.PRICES):
        payload = SampleSource(schema.PRICES, symbol).fetch(dt.date(1900, 1, 1), dt.date.today())
        raw = pd.read_csv(io.BytesIO(payload[0].content), parse_dates=["date"])
        close = raw["close"].to_numpy(np.float64)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": symbol,
                    "ds": np.arange(len(raw)),
                    "y": (close - close.mean()) / close.std(),
                    "date": raw["date"].to_numpy("datetime64[ns]"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def our_windows(data: pd.DataFrame, lookback: int, horizon: int) -> WindowSet:
    """All windows of every series, built by the pipeline's own windowing (one input column)."""
    series = [
        SeriesArray(
            series_index=i,
            dates=group["date"].to_numpy("datetime64[ns]"),
            values=torch.tensor(group["y"].to_numpy(np.float32)).unsqueeze(1),  # [T, 1]
        )
        for i, (_, group) in enumerate(data.groupby("unique_id", sort=True))
    ]
    return make_windows(series, lookback, horizon, n_calendar=0)


def run_ours(data: pd.DataFrame, s: Settings) -> Timing:
    """Train our module for ``s.steps`` steps of ``s.batch`` windows; time all but the warm-up."""
    started = time.perf_counter()
    set_seed(s.seed)  # as train_full: also switches torch to deterministic algorithms
    torch.set_num_threads(s.threads)
    windows = our_windows(data, s.lookback, s.horizon)
    model_cfg = ModelConfig(lookback=s.lookback, hidden_size=s.hidden, quantiles=list(QUANTILES))
    n_series = int(data["unique_id"].nunique())
    model = build_module(hyperparameters(model_cfg, n_series, 1, 0, s.horizon))
    train_cfg = TrainingConfig()
    optimizer = make_optimizer(model, s.lr, train_cfg)  # the product's Adam (fused kernel)
    shuffle = torch.Generator().manual_seed(s.seed)
    order, pos = torch.randperm(len(windows), generator=shuffle), 0
    stamps: list[float] = []  # end of each step
    for _ in range(s.steps):
        if pos + s.batch > len(order):
            order, pos = torch.randperm(len(windows), generator=shuffle), 0
        idx = order[pos : pos + s.batch]
        pos += s.batch
        batch = (windows.past[idx], windows.future[idx], windows.series_index[idx])
        train_step(model, (*batch, windows.target[idx]), optimizer, train_cfg.grad_clip)
        stamps.append(time.perf_counter())
    timed = stamps[s.warmup - 1 :]
    return Timing(
        batch=s.batch,
        loop_seconds=timed[-1] - timed[0],
        step_seconds=tuple(np.diff(timed).tolist()),
        fit_seconds=stamps[-1] - started,
    )


def run_neuralforecast(data_csv: Path, s: Settings, workdir: Path) -> tuple[Timing, dict]:
    """Train neuralforecast's LSTM in the bench environment; its timing and raw record."""
    out = workdir / "nf.json"
    out.unlink(missing_ok=True)
    cmd = [str(NF_PYTHON), str(NF_SIDE), "--data", str(data_csv), "--out", str(out)]
    for f in fields(Settings):
        cmd += [f"--{f.name}", str(getattr(s, f.name))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=NF_TIMEOUT_S)
    if done.returncode != 0 or not out.exists():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the neuralforecast side failed (exit {done.returncode})")
    rec = json.loads(out.read_text())
    timing = Timing(
        batch=rec["windows_per_step"],
        loop_seconds=rec["loop_seconds"],
        step_seconds=tuple(rec["step_seconds"]),
        fit_seconds=rec["fit_seconds"],
    )
    return timing, rec


def _parse(argv: list[str] | None) -> tuple[Settings, int]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="training steps per run (300)")
    p.add_argument("--warmup", type=int, default=20, help="first steps not timed (20)")
    p.add_argument("--batch", type=int, default=128, help="windows per step (128)")
    p.add_argument("--hidden", type=int, default=32, help="LSTM and head width (32)")
    p.add_argument("--lookback", type=int, default=60, help="input steps per window (60)")
    p.add_argument("--horizon", type=int, default=14, help="steps forecast (14)")
    p.add_argument("--repeats", type=int, default=5, help="runs of each side (5)")
    p.add_argument("--threads", type=int, default=2, help="torch threads, both sides (2)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if not 1 <= a.warmup < a.steps:
        p.error("need 1 <= --warmup < --steps")
    if min(a.repeats, a.batch, a.threads, a.hidden, a.lookback, a.horizon) < 1:
        p.error("--repeats, --batch, --threads, --hidden, --lookback, --horizon must be >= 1")
    return Settings(**{f.name: getattr(a, f.name) for f in fields(Settings)}), a.repeats


def _report(ours: list[Timing], theirs: list[Timing], record: dict) -> None:
    """The table of medians over the repeats, the two ratios and any noise warning."""
    med = statistics.median
    print(
        f"neuralforecast {record['version']} (torch {record['torch']}, "
        f"{record['threads']} threads); ours: torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    header = (
        f"{'side':<16}{'timed steps':>12}{'loop s':>9}{'ms/step':>9}{'windows/s':>11}"
        f"{'at median step':>16}{'fit s':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, runs in (("ours", ours), ("neuralforecast", theirs)):
        print(
            f"{name:<16}{runs[0].timed_steps:>12}{med(t.loop_seconds for t in runs):>9.2f}"
            f"{med(t.ms_per_step for t in runs):>9.2f}"
            f"{med(t.windows_per_second for t in runs):>11.0f}"
            f"{med(t.median_step_windows_per_second for t in runs):>16.0f}"
            f"{med(t.fit_seconds for t in runs):>8.2f}"
        )
    print("(medians over the repeats; windows/s = timed steps * batch / loop s;")
    print(" at median step = batch / median step time; fit s = the whole training call)")
    for name, runs in (("ours", ours), ("neuralforecast", theirs)):
        rates = [t.windows_per_second for t in runs]
        if max(rates) > NOISY * min(rates):
            print(
                f"warning: {name}'s repeats range from {min(rates):.0f} to {max(rates):.0f} "
                "windows/s: the machine was busy; trust the median-step ratio, or re-run"
            )
    ratio = med(t.windows_per_second for t in ours) / med(t.windows_per_second for t in theirs)
    steady = med(t.median_step_windows_per_second for t in ours) / med(
        t.median_step_windows_per_second for t in theirs
    )
    print(f"ratio at the median step (ours / neuralforecast): {steady:.2f}")
    print(f"ratio (ours / neuralforecast windows per second): {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    s, repeats = _parse(argv)
    if not NF_PYTHON.exists():
        print(
            f"the neuralforecast bench environment is missing ({NF_PYTHON}).\n"
            "Create it once with:  bash bench/setup_neuralforecast.sh",
            file=sys.stderr,
        )
        return 2
    data = load_prices()
    n_windows = len(our_windows(data, s.lookback, s.horizon))
    names = sorted(data["unique_id"].unique())
    print(
        f"data: {len(names)} series ({', '.join(names)}), {len(data)} rows, "
        f"{n_windows} windows of {s.lookback}+{s.horizon} steps"
    )
    print(
        f"settings: steps={s.steps} (warm-up {s.warmup}, timed {s.steps - s.warmup}), "
        f"batch={s.batch} windows, hidden={s.hidden}, threads={s.threads}, lr={s.lr}, "
        f"repeats={repeats}"
    )
    ours: list[Timing] = []
    theirs: list[Timing] = []
    record: dict = {}
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        workdir = Path(tmp)
        data_csv = workdir / "prices.csv"
        data[["unique_id", "ds", "y"]].to_csv(data_csv, index=False)
        for r in range(repeats):
            for side in ("ours", "nf") if r % 2 == 0 else ("nf", "ours"):
                if side == "ours":
                    t = run_ours(data, s)
                    ours.append(t)
                else:
                    t, record = run_neuralforecast(data_csv, s, workdir)
                    theirs.append(t)
                print(
                    f"  repeat {r + 1} {side:>4}: {t.windows_per_second:7.0f} windows/s "
                    f"({t.ms_per_step:6.2f} ms/step, median step "
                    f"{1000 * statistics.median(t.step_seconds):6.2f} ms), "
                    f"fit {t.fit_seconds:6.2f} s",
                    flush=True,
                )
    print()
    _report(ours, theirs, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
