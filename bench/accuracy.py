"""Walk-forward accuracy of the whole nightly product: baselines, the LSTM and the published
forecast, scored out of sample against what happened next.

The nightly selection picks, per series, the champion LSTM or a baseline from a backtest on the
night's last ``backtest.last_n`` origins, data that the selection itself is made on. This bench
checks that choice forward in time. It replays the nightly model logic on a series of past
nights and scores each night's forecasts against the actuals that came after it. No night saw
those actuals.

Data (library calls only, no Prefect and no SQL): each configured source is fetched with
:func:`pipeline_lib.ingest.landing.ingest_source` up to ``--data-end``, validated by
:func:`pipeline_lib.ingest.gate.check_batches` (reports only, no database), committed by
:func:`pipeline_lib.ingest.curate.commit_batches`, and turned into features by
:func:`pipeline_lib.features.stage.refresh_features` once, as of ``--data-end``. Features are
backward-looking (a row dated t uses only data dated on or before t), so each night reads the
rows dated on or before it, exactly what that night's own feature stage would have built.

Nights: every ``--every`` business days from ``--start`` to ``--end`` (default: ``--data-end``
minus the horizon in business days, so every target is observed). Each night, in date order,
with the rows dated on or before it only:

1. :func:`pipeline_lib.forecasting.retrain.train_or_reuse`: full training, fine-tune of the
   champion or reuse (the product's policy: a full training every ``retrain_every_days``),
   timed on its own;
2. :func:`pipeline_lib.forecasting.champion.evaluate`: the night's backtest and selection, saved
   with :func:`pipeline_lib.forecasting.registry.save_selection` so the next night finds the
   champion (what ``publish.publish_results`` does in production);
3. :func:`pipeline_lib.forecasting.nightly_forecasts.published_forecasts`: the forecast the
   product would publish;
4. every model's forecast of every series
   (:func:`pipeline_lib.forecasting.nightly_forecasts.model_forecasts`: the champion LSTM, and
   each baseline as the night's backtest fitted it), and what each selection rule of
   :mod:`pipeline_lib.forecasting.selection` would have published from the same evidence.

Scoring: every forecast set is scored with
:func:`pipeline_lib.evaluation.scoring.score_forecasts` against the feature ``y`` of its target
dates (``season = backtest.mase_season``; the MASE scale of a series is its naive error up to the
first night, the same for every model), on the forecasts every model made (same series, nights
and horizons). Printed: per series and overall (the mean of the per-series MASE) the MASE of each
baseline, the LSTM and the published forecast; whether the published MASE is no worse than the
best baseline's on each series; the published forecast's sMAPE and interval coverage; training
seconds (total, per full training, per fine-tune); nights, actions and promotions; which model
was published how often per series.

Models and selections go to a fresh temporary folder on every run (never to ``--data-dir`` or
the config's ``data_dir``), so a run starts with no champion, and the same inputs and settings
give the same figures (training is seeded and deterministic); only the timings vary. The settings
are the product's (the config file, ``PIPELINE_*`` variables, defaults); ``--max-epochs`` and
``--finetune-epochs`` override the training budget, and the settings used are printed. A fresh
models folder holds no hyper-parameter search (``pipeline_lib.forecasting.tuning``), so no tuned
configuration is applied. Data goes to ``--data-dir`` (ingest is incremental, so a second run
only checks that nothing is new) or to a temporary folder; the config's ``data_dir`` is never
used.

Run it with the project's environment::

    python bench/accuracy.py                          # bundled sample, nights in 2015
    python bench/accuracy.py --every 5 --json out.json
    python bench/accuracy.py --config my.toml --start 2024-01-02 --data-end 2024-12-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_lib import paths, schema
from pipeline_lib.config import SAMPLE_END, Settings, load_settings
from pipeline_lib.evaluation.metrics import ALL_HORIZONS, MODEL
from pipeline_lib.evaluation.scoring import score_forecasts, score_rows
from pipeline_lib.features.stage import load_features, refresh_features
from pipeline_lib.forecasting import registry
from pipeline_lib.forecasting.backtest import LSTM
from pipeline_lib.forecasting.champion import evaluate
from pipeline_lib.forecasting.model.base import refit_to
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.nightly_forecasts import model_forecasts, published_forecasts
from pipeline_lib.forecasting.per_bucket import choose_all, combine
from pipeline_lib.forecasting.retrain import train_or_reuse
from pipeline_lib.forecasting.selection import RULES
from pipeline_lib.ingest import curate, gate, landing
from pipeline_lib.schema import FORECAST_COLUMNS

PUBLISHED = "published"
TONIGHT, NOFUTURE = "lstm_tonight", "lstm_nofuture"  # the --ablate-future pair
FROZEN = "lstm_tonight_frozen_base"  # tonight's model with the base its training fitted
KEY = [schema.SERIES_ID, "forecast_date", "horizon"]
SAMPLE_START_NIGHT = dt.date(2015, 1, 2)  # the first business day of the sample's last year


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--config", default=None, help="TOML settings file (default: bundled sample)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder for curated data and features, reused across runs (default: a temp folder)",
    )
    p.add_argument(
        "--data-end",
        type=_date,
        default=None,
        help="newest date ingested (default: 2015-12-31 when every source is the bundled "
        "sample, else today)",
    )
    p.add_argument(
        "--start",
        type=_date,
        default=None,
        help="first night (default: 2015-01-02 on the sample, else --data-end minus a year)",
    )
    p.add_argument(
        "--end",
        type=_date,
        default=None,
        help="last night (default: --data-end minus the horizon in business days)",
    )
    p.add_argument("--every", type=int, default=10, help="business days between nights (10)")
    p.add_argument("--max-epochs", type=int, default=None, help="override training.max_epochs")
    p.add_argument(
        "--finetune-epochs", type=int, default=None, help="override training.finetune_epochs"
    )
    p.add_argument(
        "--ablate-future",
        action="store_true",
        help="also train, each night, the LSTM without the future covariates (lstm_nofuture) "
        "beside the one with them (lstm_tonight), both forecasting from tonight's model",
    )
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument(
        "--dump",
        default=None,
        help="folder for each night's backtest rows and per-model forecasts (Parquet)",
    )
    a = p.parse_args(argv)
    if a.every < 1:
        p.error("--every must be >= 1")
    for name in ("max_epochs", "finetune_epochs"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return a


def all_sample(settings: Settings) -> bool:
    """Whether every source of the config is the bundled sample."""
    kinds = {s.source.kind for s in settings.series}
    if settings.locations:
        kinds.add(settings.weather_source.kind)
    return kinds == {"sample"}


def with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    updates = {
        k: v
        for k, v in (("max_epochs", args.max_epochs), ("finetune_epochs", args.finetune_epochs))
        if v is not None
    }
    if not updates:
        return settings
    return settings.model_copy(update={"training": settings.training.model_copy(update=updates)})


def build_features(settings: Settings, data_end: dt.date) -> pd.DataFrame:
    """Ingest every source up to ``data_end``, validate, commit, build and load the features."""
    batches = [landing.ingest_source(settings, s, data_end) for s in landing.sources_for(settings)]
    gate.check_batches(settings.data_dir, batches, data_end, thresholds=settings.validation)
    curate.commit_batches(settings.data_dir, batches)
    refresh_features(settings, data_end)
    features = load_features(settings, data_end)
    if features.empty:
        raise SystemExit(f"no feature rows up to {data_end}: is the data there?")
    return features


def nights(start: dt.date, end: dt.date, every: int) -> list[dt.date]:
    return [d.date() for d in pd.bdate_range(start, end)[::every]]


def _tagged(frame: pd.DataFrame, model: str, night: dt.date) -> pd.DataFrame:
    out = frame[FORECAST_COLUMNS].assign(**{MODEL: model})
    out["forecast_date"] = pd.to_datetime(out["forecast_date"]).astype("datetime64[ns]")
    if not (out["forecast_date"] == pd.Timestamp(night)).all():
        raise AssertionError(f"{model}: a forecast of night {night} has another forecast date")
    return out


# rule variants scored beside each rule with the configured settings
VARIANTS = [
    ("dm_set_a05", "dm_set", {"alpha": 0.05}),
    ("margin_dm_set_a05", "margin_dm_set", {"alpha": 0.05}),
    ("margin_dm_set_t0", "margin_dm_set", {"tolerance": 0.0}),  # the rule before the tolerance
    ("margin_dm_set_ref0", "margin_dm_set", {"reference_alpha": 0.0}),  # the rule before it
    ("dm_a05", "dm", {"alpha": 0.05}),
    ("comb_m2", "combination", {"max_members": 2}),
    ("comb_m5", "combination", {"max_members": 5}),
]


def rule_parameters(settings: Settings) -> dict[str, Any]:
    """The selection rule's parameters in ``settings`` (``choose_all``'s keywords)."""
    cfg, b = settings.selection, settings.backtest
    return {
        "alpha": cfg.alpha,
        "max_members": cfg.max_members,
        "tolerance": cfg.tolerance,
        "reference_alpha": cfg.reference_alpha,
        "reference": b.reference,
        "min_improvement": b.min_improvement,
        "step": b.step,
    }


def dump_files(folder: str | Path, night: dt.date) -> tuple[Path, Path, Path]:
    """A ``--dump`` night's files: its backtest rows, every model's forecasts (Parquet) and its
    champion's version (text)."""
    base = Path(folder)
    return (
        base / f"{night}-backtest.parquet",
        base / f"{night}-forecasts.parquet",
        base / f"{night}-champion.txt",
    )


def rule_forecasts(
    settings: Settings, evaluation: Any, per_model: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """The forecast each selection rule would publish tonight, from tonight's backtest alone
    (not the evaluation record: ``bench/rules.py`` replays that from ``--dump``) and the same
    per-model forecasts: every rule per horizon bucket, and the product's rule before
    per-bucket choices (``margin`` over all horizons at once, ``margin_all``)."""
    versions = registry.contest_versions(
        list(settings.backtest.baselines), evaluation.selection.champion
    )
    rows = registry.contest_rows(evaluation.rows, versions)
    cfg, common = settings.selection, rule_parameters(settings)
    out = {}
    for rule in RULES:
        choices = choose_all(rows, settings.horizon, cfg.bucket_ends, rule, **common)
        out[f"rule:{rule}"] = combine(per_model, choices)
    for name, rule, changes in VARIANTS:
        choices = choose_all(rows, settings.horizon, cfg.bucket_ends, rule, **(common | changes))
        out[f"rule:{name}"] = combine(per_model, choices)
    choices = choose_all(rows, settings.horizon, [], "margin", **common)
    out["rule:margin_all"] = combine(per_model, choices)
    return out


def without_future(settings: Settings, data_dir: str) -> Settings:
    """The same settings with every series' future covariates left out (its own models
    folder): the LSTM of the ablation."""
    series = [
        s.model_copy(update={"covariates": [c for c in s.covariates if c.role == "past"]})
        for s in settings.series
    ]
    return settings.model_copy(update={"series": series, "data_dir": data_dir})


def forecast_tonight(
    settings: Settings, trained: TrainedModel, rows: pd.DataFrame, night: dt.date
) -> pd.DataFrame:
    """``trained``'s forecast from ``night``, its base refitted up to it as the product does."""
    tonight = refit_to(trained, rows, night, rows=settings.model.base_refit_rows)
    return predict(tonight, rows, night, settings.frequencies)


def tonight_lstm(settings: Settings, rows: pd.DataFrame, night: dt.date) -> pd.DataFrame:
    """The forecast of the model trained (or fine-tuned) tonight under ``settings``."""
    trained, _ = train_or_reuse(settings, rows, night)
    return forecast_tonight(settings, trained, rows, night)


def run_night(
    settings: Settings,
    features: pd.DataFrame,
    night: dt.date,
    dump: str | None = None,
    ablated: Settings | None = None,
) -> tuple[dict[str, Any], list[pd.DataFrame]]:
    """One night of the product on the rows dated on or before it: its record and forecasts.

    With ``ablated`` (see :func:`without_future`), tonight's LSTM with the future covariates
    (``lstm_tonight``) and without them (``lstm_nofuture``) are scored too."""
    rows = features.loc[features[schema.DATE] <= pd.Timestamp(night)].reset_index(drop=True)
    started = time.perf_counter()
    trained, decision = train_or_reuse(settings, rows, night)
    train_s = time.perf_counter() - started
    evaluation = evaluate(settings, rows, night, trained, decision)
    registry.save_selection(paths.models_dir(settings.data_dir), evaluation.selection)
    published = published_forecasts(settings, evaluation, rows, night)
    forecasts = [_tagged(published, PUBLISHED, night)]
    per_model = model_forecasts(settings, evaluation, rows, night)
    if dump:  # the night's evidence and every model's forecast, to study rules offline
        Path(dump).mkdir(parents=True, exist_ok=True)
        backtest_file, forecasts_file, champion_file = dump_files(dump, night)
        evaluation.rows.to_parquet(backtest_file)
        per_model.to_parquet(forecasts_file)
        champion_file.write_text(evaluation.selection.champion or "")
    for name, part in per_model.groupby(MODEL, sort=True):
        forecasts.append(_tagged(part, str(name), night))
    if ablated is not None:
        tonight = forecast_tonight(settings, trained, rows, night)
        forecasts.append(_tagged(tonight, TONIGHT, night))
        frozen = predict(trained, rows, night, settings.frequencies)
        forecasts.append(_tagged(frozen, FROZEN, night))
        forecasts.append(_tagged(tonight_lstm(ablated, rows, night), NOFUTURE, night))
    for name, part in rule_forecasts(settings, evaluation, per_model).items():
        if not part.empty:
            forecasts.append(_tagged(part, name, night))
    selection = evaluation.selection
    record = {
        "night": night.isoformat(),
        "action": decision.action,
        "reason": decision.reason,
        "trained_version": trained.version,
        "epochs_run": trained.metrics.get("epochs_run") if decision.action != "reuse" else 0,
        "best_val_loss": trained.metrics.get("best_val_loss"),
        "train_seconds": train_s,
        "other_seconds": time.perf_counter() - started - train_s,
        "champion": selection.champion,
        "promoted": selection.promoted,
        "contested": bool(
            selection.promoted and decision.contest and selection.previous_champion is not None
        ),
        "selection_reason": selection.reason,
        "published": dict(selection.published),
    }
    return record, forecasts


def score(
    forecasts: pd.DataFrame, features: pd.DataFrame, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """Scores on the forecasts every model and rule made (same series, nights and horizons):
    scores per model, series and horizon (1..H and ``ALL``), the all-horizon MASE per model,
    series and night, and the number of forecast rows per model kept and left out."""
    keys = None
    for _, part in forecasts.groupby(MODEL):
        index = pd.MultiIndex.from_frame(part[KEY])
        keys = index if keys is None else keys.intersection(index)
    common = pd.MultiIndex.from_frame(forecasts[KEY]).isin(keys)
    kept = forecasts.loc[common]
    n_models = forecasts[MODEL].nunique()
    actuals = features[[schema.SERIES_ID, schema.DATE, schema.Y]]
    season, quantiles = settings.backtest.mase_season, settings.model.band
    scores = score_forecasts(kept, actuals, features, season, quantiles)
    rows = score_rows(kept, actuals, features, season, quantiles)
    nightly = (
        rows.groupby([MODEL, schema.SERIES_ID, "forecast_date"])["scaled_error"]
        .mean()
        .rename("mase")
        .reset_index()
    )
    return scores, nightly, len(kept) // n_models, len(forecasts) - len(kept)


def nightly_verdicts(nightly: pd.DataFrame, sid: str, best: str | None) -> dict[str, int]:
    """Nights the published forecast of ``sid`` beat, tied or lost to the ``best`` baseline."""
    if best is None:
        return {}
    part = nightly.loc[nightly[schema.SERIES_ID] == sid]
    table = part.pivot(index="forecast_date", columns=MODEL, values="mase")
    diff = (table[PUBLISHED] - table[best]).dropna()
    tie = diff.abs() <= 1e-9
    return {
        "better": int(((diff < 0) & ~tie).sum()),
        "same": int(tie.sum()),
        "worse": int(((diff > 0) & ~tie).sum()),
    }


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and infinities as null, numpy scalars as Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


SCOPES = {"h1": "1", "all": ALL_HORIZONS}
STATISTICAL = ("naive", "seasonal_naive", "ets", "arima")  # what statsforecast gives a user


def _scope(
    scores: pd.DataFrame, label: str, singles: list[str], stat: list[str], columns: list[str]
) -> dict[str, Any]:
    """Per series and overall, at one horizon scope: each column's MASE, the best statistical
    baseline, the best single model in hindsight, and the published forecast against both."""
    part = scores.loc[scores["horizon"].astype(str) == label]
    mase = part.pivot(index=schema.SERIES_ID, columns=MODEL, values="mase").reindex(columns=columns)
    mae = part.pivot(index=schema.SERIES_ID, columns=MODEL, values="mae").reindex(columns=columns)
    # rMAE: MAE over the weekly seasonal naive's on the same rows (electricity's convention)
    rmae = mae.div(mae["seasonal_naive"], axis=0) if "seasonal_naive" in mae else mae * math.nan
    per_series = {}
    for sid, row in mase.iterrows():
        st, single = row[stat].dropna(), row[singles].dropna()
        best_stat = float(st.min()) if len(st) else float("nan")
        best_single = float(single.min()) if len(single) else float("nan")
        per_series[str(sid)] = {
            "mase": {m: float(row[m]) for m in columns},
            "best_statistical": str(st.idxmin()) if len(st) else None,
            "best_single": str(single.idxmin()) if len(single) else None,
            "no_worse_than_statistical": {
                m: bool(float(row[m]) <= best_stat + 1e-12) for m in columns
            },
            "ratio_to_best_single": {m: float(row[m]) / best_single for m in columns},
            "mae": {m: float(mae.loc[sid, m]) for m in columns},
            "rmae": {m: float(rmae.loc[sid, m]) for m in columns},
        }
    overall = {m: float(mase[m].mean()) for m in columns}
    best = min(singles, key=lambda m: overall[m] if not math.isnan(overall[m]) else math.inf)
    return {
        "per_series": per_series,
        "median_rmae": {m: float(rmae[m].median()) for m in columns},
        "overall_mase": overall,
        "best_single_overall": best,
        "ratio_to_best_single_overall": {m: overall[m] / overall[best] for m in columns},
        "no_worse_than_statistical_everywhere": {
            m: all(s["no_worse_than_statistical"][m] for s in per_series.values()) for m in columns
        },
    }


def summarise(
    scores: pd.DataFrame,
    nightly: pd.DataFrame,
    records: list[dict[str, Any]],
    settings: Settings,
) -> dict[str, Any]:
    baselines = list(settings.backtest.baselines)
    extra = [m for m in (TONIGHT, FROZEN, NOFUTURE) if m in set(scores[MODEL])]
    singles = [*baselines, LSTM, *extra]
    stat = [m for m in STATISTICAL if m in baselines]
    rules = sorted(m for m in scores[MODEL].unique() if str(m).startswith("rule:"))
    columns = [*singles, PUBLISHED, *rules]
    scopes = {k: _scope(scores, v, singles, stat, columns) for k, v in SCOPES.items()}
    all_scope = scopes["all"]["per_series"]
    published = scores.loc[
        (scores[MODEL] == PUBLISHED) & (scores["horizon"].astype(str) == ALL_HORIZONS)
    ].set_index(schema.SERIES_ID)
    usage: dict[str, Counter] = {sid: Counter() for sid in all_scope}
    for r in records:
        for sid in usage:
            for h, m in r["published"].get(sid, {"all": "none"}).items():
                usage[sid][f"{h}: {m}"] += 1
    per_series = {
        sid: {
            "published_smape": float(published.loc[sid, "smape"]),
            "published_coverage": float(published.loc[sid, "coverage"]),
            "n": int(published.loc[sid, "n"]),
            "published_models": dict(usage[sid].most_common()),
            "nights_vs_best_statistical": nightly_verdicts(
                nightly, sid, all_scope[sid]["best_statistical"]
            ),
        }
        for sid in all_scope
    }
    train = {
        k: [r["train_seconds"] for r in records if r["action"] == k] for k in ("full", "finetune")
    }
    actions = Counter(r["action"] for r in records)
    return {
        "models": columns,
        "singles": singles,
        "statistical": stat,
        "rule": settings.selection.rule,
        "scopes": scopes,
        "per_series": per_series,
        "nights": len(records),
        "actions": dict(actions),
        "promotions": sum(r["promoted"] for r in records),
        "contested_promotions": sum(r["contested"] for r in records),
        "training_seconds": {
            "total": sum(r["train_seconds"] for r in records),
            "per_full": statistics.mean(train["full"]) if train["full"] else None,
            "per_finetune": statistics.mean(train["finetune"]) if train["finetune"] else None,
            "max_full": max(train["full"], default=None),
            "median_full": statistics.median(train["full"]) if train["full"] else None,
        },
        "other_seconds": sum(r["other_seconds"] for r in records),
    }


def _short(name: str) -> str:
    return name.replace("rule:", "r:").replace("seasonal_naive", "snaive")


def report(summary: dict[str, Any], settings: Settings, n_scored: int, n_dropped: int) -> None:
    models = summary["models"]
    q = settings.model.band
    level = round(100 * (q[2] - q[0]))
    width = max(8, *(len(s) for s in summary["per_series"]))
    print()
    print(
        f"Out-of-sample MASE (season {settings.backtest.mase_season}), {n_scored} forecast rows "
        "per model (scored where an actual exists)"
        + (f" ({n_dropped} rows not made by every model left out)" if n_dropped else "")
    )
    print(
        f"published = the product's rule ({summary['rule']}"
        + (", on the evaluation record); " if settings.selection.record_windows else "); ")
        + "r:<rule> = what each rule would have published on the same nights from their backtest "
        "alone; r:margin_all = the rule before per-bucket choices"
    )
    for key, scope in summary["scopes"].items():
        title = "h=1" if key == "h1" else f"all horizons 1..{settings.horizon}"
        print(f"\n{title}")
        header = f"{'series':<{width}}" + "".join(f"{_short(m):>13}" for m in models)
        print(header)
        print("-" * len(header))
        for sid, s in scope["per_series"].items():
            print(f"{sid:<{width}}" + "".join(f"{_fmt(s['mase'][m]):>13}" for m in models))
        overall = scope["overall_mase"]
        print(f"{'overall':<{width}}" + "".join(f"{_fmt(overall[m]):>13}" for m in models))
        ratio = scope["ratio_to_best_single_overall"]
        print(
            f"{'/best':<{width}}"
            + "".join(f"{_fmt(ratio[m]):>13}" for m in models)
            + f"   (overall / best single model in hindsight: {scope['best_single_overall']})"
        )
        ok = scope["no_worse_than_statistical_everywhere"]
        print(
            f"{'<=stat':<{width}}"
            + "".join(f"{'yes' if ok[m] else 'no':>13}" for m in models)
            + "   (no worse than the best statistical baseline on every series)"
        )
        if "seasonal_naive" in models:
            print(f"\n{title}: MAE (price units) / rMAE (MAE over the weekly seasonal naive's)")
            print(header)
            print("-" * len(header))
            for sid, s in scope["per_series"].items():
                cells = "".join(
                    f"{_fmt(s['mae'][m], 2) + '/' + _fmt(s['rmae'][m], 2):>13}" for m in models
                )
                print(f"{sid:<{width}}{cells}")
            med = scope["median_rmae"]
            print(f"{'med rMAE':<{width}}" + "".join(f"{_fmt(med[m]):>13}" for m in models))
    print(
        "(overall = mean of the per-series MASE; lstm = each night's champion, every series; "
        "lstm_tonight / lstm_nofuture: tonight's model with / without the future covariates; "
        f"statistical baselines: {', '.join(summary['statistical'])})"
    )
    print()
    header = (
        f"{'series':<{width}}{'best stat (all h)':>18}{'published - best':>18}"
        f"{'nights +/=/-':>14}{'sMAPE':>8}{f'{level}% coverage':>14}"
    )
    print(header)
    print("-" * len(header))
    scope = summary["scopes"]["all"]["per_series"]
    for sid, s in summary["per_series"].items():
        best = scope[sid]["best_statistical"]
        diff = scope[sid]["mase"][PUBLISHED] - scope[sid]["mase"][best] if best else math.nan
        v = s["nights_vs_best_statistical"]
        nights = f"{v['better']}/{v['same']}/{v['worse']}" if v else "-"
        print(
            f"{sid:<{width}}{best or '-':>18}{_fmt(diff):>18}{nights:>14}"
            f"{_fmt(s['published_smape'], 2):>8}{_fmt(s['published_coverage'], 3):>14}"
        )
    print(
        "(nights +/=/-: nights the published forecast's MASE was below, equal to, above the best "
        f"statistical baseline's; sMAPE on 0..200; coverage: share of actuals inside the "
        f"published interval [q{q[0]:g}, q{q[2]:g}])"
    )
    print()
    t = summary["training_seconds"]
    actions = summary["actions"]
    print(
        f"nights: {summary['nights']} (full {actions.get('full', 0)}, fine-tune "
        f"{actions.get('finetune', 0)}, reuse {actions.get('reuse', 0)}); promotions: "
        f"{summary['promotions']} ({summary['contested_promotions']} won a contest, the rest "
        "without one: first model or champion not comparable)"
    )
    print(
        f"training seconds: total {_fmt(t['total'], 1)}, per full {_fmt(t['per_full'], 2)} "
        f"(median {_fmt(t['median_full'], 2)}, max {_fmt(t['max_full'], 2)}), per fine-tune "
        f"{_fmt(t['per_finetune'], 2)}; backtest, selection and forecasts: "
        f"{_fmt(summary['other_seconds'], 1)} s"
    )
    print("published (horizons: model), nights per series:")
    for sid, s in summary["per_series"].items():
        used = ", ".join(f"{m} x{n}" for m, n in s["published_models"].items())
        print(f"  {sid:<{width}} {used}")


def settings_line(settings: Settings) -> str:
    m, t, b = settings.model, settings.training, settings.backtest
    return (
        f"settings: horizon={settings.horizon}; model: lookback={m.lookback}, "
        f"hidden={m.hidden_size}, layers={m.num_layers}, cell={m.cell}, attention={m.attention}, "
        f"quantiles={m.quantiles}; training: seed={t.seed}, max_epochs={t.max_epochs}, "
        f"patience={t.patience}, finetune_epochs={t.finetune_epochs}, "
        f"retrain_every_days={t.retrain_every_days}, train_window_days={t.train_window_days}, "
        f"threads={t.num_threads}; backtest: last_n={b.last_n}, step={b.step}, "
        f"mase_season={b.mase_season}, baselines={list(b.baselines)}; selection: "
        f"{settings.selection.model_dump()}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_accuracy_") as tmp:
        data_dir = args.data_dir or str(Path(tmp) / "data")
        settings = with_overrides(load_settings(args.config, data_dir=data_dir), args)
        sample = all_sample(settings)
        data_end = args.data_end or (SAMPLE_END if sample else dt.date.today())
        end = args.end or (pd.Timestamp(data_end) - pd.offsets.BDay(settings.horizon)).date()
        start = args.start or (
            SAMPLE_START_NIGHT
            if sample and data_end == SAMPLE_END
            else data_end - dt.timedelta(days=365)
        )
        dates = nights(start, end, args.every)
        if not dates:
            raise SystemExit(f"no night between --start {start} and --end {end}")
        print(
            f"series: {', '.join(settings.series_ids)}; data up to {data_end} in {data_dir}; "
            f"{len(dates)} nights {dates[0]}..{dates[-1]}, every {args.every} business days"
        )
        print(settings_line(settings))
        t0 = time.perf_counter()
        features = build_features(settings, data_end)
        print(
            f"features: {len(features)} rows ({time.perf_counter() - t0:.1f} s: ingest, "
            "validation, curated, features)",
            flush=True,
        )
        walk = settings.model_copy(update={"data_dir": str(Path(tmp) / "walk")})
        ablated = (
            without_future(settings, str(Path(tmp) / "ablated")) if args.ablate_future else None
        )
        records, parts = [], []
        for night in dates:
            record, forecasts = run_night(walk, features, night, args.dump, ablated)
            records.append(record)
            parts += forecasts
            promoted = "promoted" if record["promoted"] else "kept"
            print(
                f"  {night} {record['action']:<8} {record['train_seconds']:6.1f} s train "
                f"(epochs {record['epochs_run']}), champion {record['champion']} ({promoted}); "
                f"published {record['published']}",
                flush=True,
            )
        forecasts = pd.concat([p for p in parts if not p.empty], ignore_index=True)
        scores, nightly, n_scored, n_dropped = score(forecasts, features, settings)
        summary = summarise(scores, nightly, records, settings)
        report(summary, settings, n_scored, n_dropped)
        print(f"\nrun time: {time.perf_counter() - wall:.1f} s")
        if args.json:
            out = {
                "args": {k: str(v) if v is not None else None for k, v in vars(args).items()},
                "data_end": data_end.isoformat(),
                "settings": {
                    "series": settings.series_ids,
                    "horizon": settings.horizon,
                    "model": settings.model.model_dump(),
                    "training": settings.training.model_dump(),
                    "backtest": settings.backtest.model_dump(),
                },
                "rows_per_model": n_scored,
                "rows_left_out": n_dropped,
                "summary": summary,
                "scores": scores.to_dict(orient="records"),
                "nightly_mase": nightly.assign(
                    forecast_date=nightly["forecast_date"].dt.date.astype(str)
                ).to_dict(orient="records"),
                "night_records": records,
                "run_seconds": time.perf_counter() - wall,
            }
            Path(args.json).write_text(json.dumps(_clean(out), indent=2, default=str))
            print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
