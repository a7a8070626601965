"""Selection rules replayed on the nights of a ``bench/accuracy.py --dump`` folder.

``bench/accuracy.py`` runs the product night by night (training, backtest, forecasts) and
scores what each selection rule would have published. That takes minutes to an hour; a rule's
choice, though, needs only each night's evidence (its backtest rows) and every model's forecast
of that night, which ``--dump`` keeps. This bench reads them and scores any number of rule
variants on the same nights, with the library's own functions
(:func:`pipeline_lib.forecasting.registry.contest_rows`,
:func:`pipeline_lib.forecasting.per_bucket.choose_all`,
:func:`pipeline_lib.forecasting.per_bucket.combine`) and the accuracy bench's scoring (the same
rows, the same MASE scale, the same intersection of the forecasts every model made): a variant that
is the configured rule gives the accuracy bench's ``r:<rule>`` figures exactly.

Printed, per variant, at h=1, on each later horizon bucket of ``selection.bucket_ends`` (2-5,
6-14) and over all horizons: the overall MASE (the mean of the per-series MASE) over the best
single model's in hindsight (the LSTM counted), the series on which it is no worse than the
best statistical baseline (naive, seasonal naive, ETS, ARIMA: what a user gets from
statsforecast) and than the best baseline (the linear model counted too). A variant is
``name=rule`` with optional ``:key=value,...`` overrides of the selection's parameters
(``alpha``, ``max_members``, ``tolerance``, ``min_improvement``, ``reference_alpha``) and of
the evidence it reads: ``record=N`` (windows per series; the settings'
``selection.record_windows`` unless given; 0: the night's backtest alone, the product before
the evaluation record) reads the record of every night so far, its newest N windows, and
``keep=first|last|tonight`` says which night's rows a window scored on several nights keeps
(``first``, the product's, unless given; see :func:`evidence`); the rest come from the
settings. Rules chosen this way are chosen on the
nights they are scored on: read a small difference as noise.

    python bench/accuracy.py --config pipeline_lib/sample_data/electricity.toml \\
        --data-end 2020-12-31 --start 2019-01-02 --dump /tmp/elec
    python bench/rules.py --config pipeline_lib/sample_data/electricity.toml \\
        --data-end 2020-12-31 --dump /tmp/elec
    python bench/rules.py --dump /tmp/stocks \\
        --variants "m=margin;r=margin_dm_set:reference_alpha=0.1"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from accuracy import (
    SCOPES,
    STATISTICAL,
    _clean,
    _scope,
    _tagged,
    build_features,
    dump_files,
    rule_parameters,
    score,
)

from pipeline_lib import schema
from pipeline_lib.config import SAMPLE_END, Settings, load_settings
from pipeline_lib.evaluation.metrics import ALL_HORIZONS, MODEL
from pipeline_lib.forecasting import evaluation_record, registry
from pipeline_lib.forecasting.backtest import LSTM
from pipeline_lib.forecasting.per_bucket import buckets, choose_all, combine
from pipeline_lib.forecasting.selection import RULES

PARAMETERS = {
    "alpha": float,
    "max_members": int,
    "tolerance": float,
    "min_improvement": float,
    "reference_alpha": float,
    "record": int,
    "keep": str,
}
# the evidence's parameters, not the rule's (see ``evidence``); "record" defaults to the
# settings' ``selection.record_windows``, read as the product reads it ("first")
RECORD_PARAMETERS = ("record", "keep")


def record_defaults(settings: Settings) -> dict[str, Any]:
    return {"record": settings.selection.record_windows, "keep": "first"}


DEFAULT_VARIANTS = ";".join(
    [
        "configured=",
        "no_record=margin_dm_set:record=0",
        "record50=margin_dm_set:record=50",
        "record200=margin_dm_set:record=200",
        "rec_last=margin_dm_set:keep=last",
        "rec_tonight=margin_dm_set:keep=tonight",
        "mds_a10=margin_dm_set:alpha=0.1",
        "mds_a20=margin_dm_set:alpha=0.2",
        "mds_m2=margin_dm_set:max_members=2",
        "mds_t0=margin_dm_set:tolerance=0",
        "mds_t05=margin_dm_set:tolerance=0.05",
        "mds_t20=margin_dm_set:tolerance=0.2",
        "mds_mi05=margin_dm_set:min_improvement=0.05",
        "mds_mi20=margin_dm_set:min_improvement=0.2",
        "mds_ref0=margin_dm_set:reference_alpha=0",
        "mds_ref10=margin_dm_set:reference_alpha=0.1",
        "mds_ref30=margin_dm_set:reference_alpha=0.3",
        "margin=margin",
        "margin_ref0=margin:reference_alpha=0",
        "dm_set=dm_set",
        "dm=dm",
        "best=best",
        "mean2=combination:max_members=2",
        "mean3=combination:max_members=3",
    ]
)


def parse_variants(text: str, settings: Settings) -> dict[str, tuple[str, dict[str, Any]]]:
    """``name=rule:key=value,key=value;name=...`` as name -> (rule, every parameter of the
    choice); an empty rule is the configured one, an unnamed parameter the settings'."""
    cfg, base = settings.selection, rule_parameters(settings)
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for item in (i.strip() for i in text.split(";") if i.strip()):
        name, _, spec = item.partition("=")
        rule, _, given = spec.partition(":")
        rule = rule.strip() or cfg.rule
        if rule not in RULES:
            raise SystemExit(f"variant {name!r}: unknown rule {rule!r}; known: {list(RULES)}")
        params = dict(base) | record_defaults(settings)
        for pair in (p.strip() for p in given.split(",") if p.strip()):
            key, _, value = pair.partition("=")
            if key not in PARAMETERS:
                raise SystemExit(f"variant {name!r}: unknown parameter {key!r}: {list(PARAMETERS)}")
            params[key] = PARAMETERS[key](value)
        if params["keep"] not in ("first", "last", "tonight"):
            keep = params["keep"]
            raise SystemExit(f"variant {name!r}: keep is first, last or tonight, not {keep!r}")
        out[name.strip()] = (rule, params)
    return out


def nights_in(dump: Path) -> list[dt.date]:
    found = sorted(
        p.name.removesuffix("-backtest.parquet") for p in dump.glob("*-backtest.parquet")
    )
    if not found:
        raise SystemExit(f"no <night>-backtest.parquet in {dump}: run bench/accuracy.py --dump")
    return [dt.date.fromisoformat(n) for n in found]


def night_contest(settings: Settings, dump: Path, night: dt.date) -> pd.DataFrame:
    """The contest rows of ``night``'s backtest (models named as in the contest)."""
    backtest_file, _, champion_file = dump_files(dump, night)
    champion = champion_file.read_text().strip() or None
    versions = registry.contest_versions(list(settings.backtest.baselines), champion)
    return registry.contest_rows(pd.read_parquet(backtest_file), versions)


def evidence(contests: list[pd.DataFrame], record: int, keep: str) -> pd.DataFrame:
    """The backtest rows a rule reads on the newest night of ``contests`` (every night's
    contest rows up to it, oldest first), for the evidence the product does not use. ``record``
    0: that night's backtest alone (the product before its evaluation record). Otherwise the
    rows of every night so far, per series its newest ``record`` windows (origins); a window
    scored on several nights keeps its newest night's rows (``keep`` "last": tonight's backtest
    wins where it reaches, older windows as the nights that scored them saw them) or, ``keep``
    "tonight", the night's own rows for its windows and the first night's for older ones.
    ``keep`` "first" is the product's record (:func:`replay_night` reads it with
    :func:`pipeline_lib.forecasting.evaluation_record.merge`)."""
    if not record:
        return contests[-1]
    key = [schema.SERIES_ID, "forecast_date", "horizon", MODEL]
    if keep == "tonight":
        tonight = contests[-1]
        older = pd.concat(contests[:-1] or [tonight.iloc[:0]], ignore_index=True)
        older = older.drop_duplicates(key, keep="first")
        windows = tonight[[schema.SERIES_ID, "forecast_date"]].drop_duplicates()
        flags = older.merge(windows, how="left", indicator=True)["_merge"] == "left_only"
        rows = pd.concat([older.loc[flags.to_numpy()], tonight], ignore_index=True)
    else:
        rows = pd.concat(contests, ignore_index=True).drop_duplicates(key, keep=keep)
    dates = rows[[schema.SERIES_ID, "forecast_date"]].drop_duplicates()
    newest = dates.groupby(schema.SERIES_ID)["forecast_date"].rank(method="first", ascending=False)
    kept = dates.loc[newest <= record]
    return rows.merge(kept, on=[schema.SERIES_ID, "forecast_date"], how="inner")


def replay_night(
    settings: Settings,
    dump: Path,
    night: dt.date,
    variants: dict[str, tuple[str, dict[str, Any]]],
    contests: list[pd.DataFrame],
    record: pd.DataFrame,
    tonight: pd.DataFrame,
) -> list[pd.DataFrame]:
    """Every model's forecast of ``night`` and what each variant publishes from its evidence
    (``contests``: the contest rows of every night up to this one, oldest first; ``record``:
    the product's evaluation record as this night reads it, :func:`record_after`;
    ``tonight``: the night's window losses)."""
    _, forecasts_file, _ = dump_files(dump, night)
    per_model = pd.read_parquet(forecasts_file)
    out = [_tagged(part, str(m), night) for m, part in per_model.groupby(MODEL, sort=True)]
    ends = settings.selection.bucket_ends
    # (rows, window losses or None) per evidence: variants that share one read it once
    seen: dict[tuple[int, str], tuple[pd.DataFrame, pd.DataFrame | None]] = {}
    for name, (rule, given) in variants.items():
        params = {k: v for k, v in given.items() if k not in RECORD_PARAMETERS}
        windows, keep = given["record"], given["keep"]
        if (windows, keep) not in seen:
            if windows and keep == "first":  # the product's record, read as the product does
                losses, _ = evaluation_record.merge(record, tonight, windows)
                seen[windows, keep] = (contests[-1], losses)
            else:
                seen[windows, keep] = (evidence(contests, windows, keep), None)
        rows, losses = seen[windows, keep]
        choices = choose_all(rows, settings.horizon, ends, rule, losses, **params)
        published = combine(per_model, choices)
        if not published.empty:
            out.append(_tagged(published, f"rule:{name}", night))
    return out


def record_after(record: pd.DataFrame, tonight: pd.DataFrame) -> pd.DataFrame:
    """The product's evaluation record after a night whose window losses are ``tonight``: the
    windows it first scored added (what ``registry.save_selection`` writes)."""
    _, new = evaluation_record.merge(record, tonight, 1)
    return pd.concat([record, new], ignore_index=True) if not record.empty else new


def table(summary: dict[str, Any], variants: list[str]) -> list[dict[str, Any]]:
    """Per variant and scope: the overall ratio to the best single model, the series no worse
    than the best statistical baseline and than the best baseline (the linear model too)."""
    lines = []
    for name in variants:
        column = f"rule:{name}"
        line: dict[str, Any] = {"variant": name}
        for key, scope in summary.items():
            per = scope["per_series"]
            baselines = scope["baselines"]
            line[f"{key}_ratio"] = scope["ratio_to_best_single_overall"][column]
            line[f"{key}_stat"] = sum(s["no_worse_than_statistical"][column] for s in per.values())
            line[f"{key}_baseline"] = sum(
                s["mase"][column] <= min(s["mase"][m] for m in baselines) + 1e-12
                for s in per.values()
            )
            line[f"{key}_series"] = len(per)
        lines.append(line)
    return lines


def with_buckets(scores: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """``scores`` plus a row per model, series and horizon bucket (``horizon`` ``"2-5"``):
    the mean of its horizons' MASE and MAE, which is the bucket's own (every horizon has the
    same forecasts: the scoring keeps what every model made)."""
    per_h = scores.loc[scores["horizon"].astype(str) != ALL_HORIZONS].copy()
    per_h["h"] = per_h["horizon"].astype(int)
    parts = [scores]
    for first, last in buckets(settings.selection.bucket_ends, settings.horizon):
        if first == last:
            continue
        part = per_h.loc[per_h["h"].between(first, last)]
        mean = part.groupby([MODEL, schema.SERIES_ID], as_index=False)[["mase", "mae"]].mean()
        parts.append(mean.assign(horizon=f"{first}-{last}"))
    return pd.concat(parts, ignore_index=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dump", required=True, help="a bench/accuracy.py --dump folder")
    p.add_argument("--config", default=None, help="the TOML settings the dump was made with")
    p.add_argument("--data-end", type=dt.date.fromisoformat, default=None)
    p.add_argument("--data-dir", default=None, help="where the data goes (default: temporary)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="name=rule[:key=value,...];...")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wall = time.perf_counter()
    dump = Path(args.dump)
    with tempfile.TemporaryDirectory(prefix="bench_rules_") as tmp:
        settings = load_settings(args.config, data_dir=args.data_dir or str(Path(tmp) / "data"))
        variants = parse_variants(args.variants, settings)
        dates = nights_in(dump)
        data_end = args.data_end or SAMPLE_END
        print(f"{len(dates)} nights {dates[0]}..{dates[-1]} from {dump}; data up to {data_end}")
        features = build_features(settings, data_end)
        parts, contests, record = [], [], evaluation_record.empty()
        for night in dates:
            contests.append(night_contest(settings, dump, night))
            tonight = evaluation_record.window_losses(
                contests[-1], settings.horizon, settings.selection.bucket_ends
            )
            parts += replay_night(settings, dump, night, variants, contests, record, tonight)
            record = record_after(record, tonight)
        forecasts = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    scores, _, n_scored, n_dropped = score(forecasts, features, settings)
    baselines = list(settings.backtest.baselines)
    singles = [*baselines, LSTM]
    stat = [m for m in STATISTICAL if m in baselines]
    columns = [*singles, *(f"rule:{v}" for v in variants)]
    scores = with_buckets(scores, settings)
    scopes = {"h1": SCOPES["h1"]}
    for first, last in buckets(settings.selection.bucket_ends, settings.horizon):
        if last > 1:
            scopes[f"h{first}-{last}"] = f"{first}-{last}"
    scopes["all"] = SCOPES["all"]
    summary = {}
    for key, label in scopes.items():
        summary[key] = _scope(scores, label, singles, stat, columns) | {"baselines": baselines}
    lines = table(summary, list(variants))
    print(
        f"{n_scored} forecast rows per model scored ({n_dropped} not made by every model left "
        "out); ratio: overall MASE / the best single model's in hindsight "
        f"(h=1: {summary['h1']['best_single_overall']}, all: "
        f"{summary['all']['best_single_overall']}); <=stat, <=base: series no worse than the "
        "best statistical baseline, than the best baseline (the linear model counted)"
    )
    base = rule_parameters(settings) | record_defaults(settings)
    print(
        f"configured: {settings.selection.rule} "
        + ", ".join(f"{k}={base[k]}" for k in PARAMETERS)
        + f", reference={base['reference']}"
    )
    header = f"{'variant':<15}{'rule, changes':<36}"
    for key in summary:
        header += f"{key:>9}{'<=stat':>7}{'<=base':>7}"
    print(header)
    print("-" * len(header))
    for line in lines:
        rule, params = variants[line["variant"]]
        changes = ",".join(
            f"{k}={params[k]:g}" if not isinstance(params[k], str) else f"{k}={params[k]}"
            for k in PARAMETERS
            if params[k] != base[k]
        )
        cells = f"{line['variant']:<15}{(rule + ' ' + changes)[:35]:<36}"
        for key in summary:
            n = line[f"{key}_series"]
            cells += (
                f"{line[f'{key}_ratio']:>9.3f}{line[f'{key}_stat']:>4}/{n:<2}"
                f"{line[f'{key}_baseline']:>4}/{n:<2}"
            )
        print(cells)
    print(f"\nrun time: {time.perf_counter() - wall:.1f} s")
    if args.json:
        out = {
            "variants": {k: {"rule": r, **p} for k, (r, p) in variants.items()},
            "table": lines,
            "scopes": summary,
        }
        Path(args.json).write_text(json.dumps(_clean(out), indent=2, default=str))
        print(f"figures written to {args.json}")
    return 0 if all(math.isfinite(line["all_ratio"]) for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
