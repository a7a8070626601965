"""The neuralforecast half of bench/train_speed.py: train neuralforecast's LSTM once and time it.

Runs in the separate bench environment (``bench/.venv-nf``, made by
``bash bench/setup_neuralforecast.sh``), never in the project's own; ``train_speed.py`` starts it
as a subprocess, once per repeat, so this file imports nothing from ``pipeline_lib``.

Input: ``--data``, a CSV with columns ``unique_id, ds, y`` written by ``train_speed.py`` (``ds`` is
the integer row number within each series, so a step is one observed row, exactly as in the
pipeline's own windows; ``freq=1``). Output: ``--out``, a JSON record of the timings.

How the model is matched to ours (neuralforecast 3.3 argument names):

- ``input_size=lookback``, ``h=horizon``: the same window of ``lookback + horizon`` rows.
- ``encoder_hidden_size=hidden``, ``encoder_n_layers=1``: one LSTM layer of the same width;
  ``decoder_hidden_size=hidden``, ``decoder_layers=2``: an MLP head with one hidden layer of the
  same width, like our ``Linear -> ReLU -> Linear`` head (``recurrent=False``, the default:
  direct multi-horizon output).
- Windows per step: neuralforecast's recurrent models sample ``windows_batch_size`` windows per
  training step from the windows of the ``batch_size`` *series* in the batch. ``batch_size`` is
  set to the number of series and ``windows_batch_size=batch``, so every step trains on exactly
  ``batch`` windows drawn from all series, as ours does.
- ``loss=MQLoss(quantiles=[0.1, 0.5, 0.9])``: the same pinball loss on three quantiles.
- ``max_steps=steps``, ``val_size=0`` in ``fit`` (no validation at all), no early stopping,
  ``gradient_clip_val=1.0`` and Adam with ``learning_rate=lr`` as ours.
- ``scaler_type="standard"``: neuralforecast's usual per-window scaling, part of its step.
- ``torch.set_num_threads(threads)`` as on our side, ``accelerator="cpu"``, one device, no
  progress bar, logger, checkpointing or model summary.

Timing: a Lightning callback stamps ``time.perf_counter()`` at the end of every training batch
(after the optimizer step). The training-loop time is from the end of the last warm-up step to
the end of the last step, so it covers ``steps - warmup`` full steps, Lightning's own per-step
work included (with one batch of series per epoch, each step is also one Lightning epoch), and
excludes the data set, trainer and model set-up. ``step_seconds`` are the timed steps one by one
(end to end of consecutive steps) and ``fit_seconds`` is the whole ``nf.fit(df)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="CSV with unique_id, ds, y")
    p.add_argument("--out", type=Path, required=True, help="where the JSON timings go")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--lookback", type=int, required=True)
    p.add_argument("--horizon", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    return p.parse_args()


def main() -> None:
    args = _args()
    warnings.filterwarnings("ignore")
    for name in ("lightning", "pytorch_lightning", "lightning_fabric", "neuralforecast"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)

    import neuralforecast
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import LSTM
    from pytorch_lightning.callbacks import Callback

    class StepClock(Callback):
        """``time.perf_counter()`` at the end of each training batch, in order."""

        def __init__(self) -> None:
            self.stamps: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.stamps.append(time.perf_counter())

    df = pd.read_csv(args.data)
    n_series = int(df["unique_id"].nunique())
    model = LSTM(
        h=args.horizon,
        input_size=args.lookback,
        encoder_n_layers=1,
        encoder_hidden_size=args.hidden,
        decoder_hidden_size=args.hidden,
        decoder_layers=2,
        loss=MQLoss(quantiles=[0.1, 0.5, 0.9]),
        max_steps=args.steps,
        learning_rate=args.lr,
        val_check_steps=args.steps,
        early_stop_patience_steps=-1,
        batch_size=n_series,
        windows_batch_size=args.batch,
        scaler_type="standard",
        random_seed=args.seed,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        gradient_clip_val=1.0,
        callbacks=[StepClock()],
    )
    nf = NeuralForecast(models=[model], freq=1)
    started = time.perf_counter()
    nf.fit(df=df, val_size=0)
    fit_seconds = time.perf_counter() - started

    # NeuralForecast trains deep copies of the models it is given: read the copy's clock.
    (clock,) = [c for c in nf.models[0].trainer_kwargs["callbacks"] if isinstance(c, StepClock)]
    stamps = clock.stamps
    if len(stamps) != args.steps:
        raise SystemExit(f"expected {args.steps} training steps, the callback saw {len(stamps)}")
    timed_steps = args.steps - args.warmup
    loop_seconds = stamps[-1] - stamps[args.warmup - 1]
    record = {
        "version": neuralforecast.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "n_series": n_series,
        "steps": args.steps,
        "timed_steps": timed_steps,
        "windows_per_step": args.batch,
        "loop_seconds": loop_seconds,
        "step_seconds": np.diff(stamps[args.warmup - 1 :]).tolist(),
        "fit_seconds": fit_seconds,
        "final_train_loss": float(nf.models[0].train_trajectories[-1][1]),
    }
    args.out.write_text(json.dumps(record))


if __name__ == "__main__":
    main()
