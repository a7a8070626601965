"""What is published, per series and horizon bucket: one model or a combination, chosen on
out-of-sample evidence, with the evidence kept.

The evidence is the night's backtest (``pipeline_lib.forecasting.backtest``): for every model
(the champion LSTM and each baseline) and every window (origin), the scaled absolute errors
(``|actual - yhat|`` over the series' naive in-sample MAE; their mean is the MASE) of the
horizons in the bucket. Per series and bucket, a window's loss is the mean over the bucket's
horizons; models are compared on the windows every one of them forecast.

Rules (``SelectionConfig.rule``); ``bench/accuracy.py`` scores each one walk-forward, and the
README gives the figures that chose the default:

- ``dm_set``: the models whose loss is not significantly worse than the best one's
  (a one-sided Diebold-Mariano test on the loss differences, HAC variance over the overlap of
  the windows, Harvey-Leybourne-Newbold small-sample correction, level ``alpha``), at most
  ``max_members`` of them, best first, combined with equal weights. A model that is clearly best
  is published alone; where several cannot be told apart, their mean is (combinations were
  the robust winners of the M4 competition: the mean of comparable forecasts has a lower
  expected loss than a pick among them made on noise). With ``tolerance`` (0.1, the default),
  a member's MASE must also be within that share of the best one's: on a backtest of 40
  windows the test often cannot tell a model 10-25% worse from the best, and averaging it in
  costs (README, Benchmarks).
- ``best``: the model with the lowest mean loss.
- ``dm``: the best model if the test says the ``reference`` is significantly worse than it,
  else the reference.
- ``margin``: the reference unless the best model's MASE is lower than the
  reference's by more than ``min_improvement``, then the best model.
- ``margin_dm_set`` (the default): the reference unless the best model's MASE beats it by
  ``min_improvement`` (as ``margin``), then the ``dm_set`` of the models: where nothing clearly
  beats what a user has for free, it is kept; where something does, the models a test cannot
  tell from the best are combined instead of a pick made on noise. With ``reference_alpha``
  (``selection.reference_alpha``, 0.2 by default; 0 here and in :func:`choose`: off) both
  margin rules also keep the reference unless the test finds its loss above the best model's
  at that level (README, Benchmarks).
- ``combination``: the equal-weight mean of the ``max_members`` best models.
- ``dm_combination``: that mean, scored on the same windows from its members' backtest
  forecasts, unless a single model's loss is lower and the test says the mean is
  significantly worse than it: then that model alone. The combination is the default and a
  single model must earn its place.
- ``dm_mean``: the equal-weight mean of the (at most ``max_members``) best models that the test
  finds significantly better than the ``reference``; the reference where none is. What a user
  has for free is kept unless beaten with evidence, and what beats it is combined.

A combination's forecast is the weighted mean of its members' point forecasts and of their
bands (quantile averaging). Its name is ``mean(a,b,...)``, the members in alphabetical order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

import numpy as np
import pandas as pd
from scipy import special

from pipeline_lib import schema
from pipeline_lib.config import RuleName
from pipeline_lib.evaluation.metrics import MODEL

RULES: tuple[str, ...] = get_args(RuleName)
COMBINED = "__combination__"  # the window-loss column of the best models' mean
LOSS = "scaled_error"
# what the rules read of a backtest row (the combination: its point forecast and error too)
ROW_COLUMNS = [
    schema.SERIES_ID,
    "forecast_date",
    "horizon",
    MODEL,
    LOSS,
    "abs_error",
    "yhat",
    "actual",
]


@dataclass(frozen=True)
class Choice:
    """The model or combination published for one series on horizons ``first..last``.

    ``weights``: member -> weight (one member: a single model), in order of their loss;
    ``evidence``: the rule's inputs (each model's MASE on the bucket, the p-value of the test
    that it is worse than the best, the windows compared, models left out and why)."""

    series_id: str
    first: int
    last: int
    rule: str
    weights: dict[str, float]
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``forecasts.model``: the model's name, or ``mean(a,b)`` for a combination (members
        in alphabetical order, so the same members always have the same name)."""
        names = sorted(self.weights)
        return names[0] if len(names) == 1 else f"mean({','.join(names)})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Choice:
        return cls(**dict(record))


def buckets(ends: Sequence[int], horizon: int) -> list[tuple[int, int]]:
    """Horizon buckets ``(first, last)`` from their last horizons: ``[1, 5]`` with horizon 14
    gives ``(1, 1), (2, 5), (6, 14)``; ends at or beyond the horizon are dropped."""
    out, first = [], 1
    for end in sorted({int(e) for e in ends if 1 <= int(e) < horizon}):
        out.append((first, end))
        first = end + 1
    out.append((first, horizon))
    return out


def bucket_losses(rows: pd.DataFrame, first: int, last: int) -> pd.Series:
    """The mean loss of each series, window (forecast_date) and model over horizons
    ``first..last``, indexed by those three."""
    part = rows.loc[rows["horizon"].between(first, last)]
    return part.groupby([schema.SERIES_ID, "forecast_date", MODEL])[LOSS].mean()


def window_losses(rows: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """Per series: the mean loss of each window (forecast_date) and model over horizons
    ``first..last``: columns ``series_id, forecast_date`` and one per model."""
    return bucket_losses(rows, first, last).unstack(MODEL).reset_index()


def bucket_table(evidence: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """:func:`window_losses`' table from window losses kept per bucket (``evidence``: columns
    ``series_id, forecast_date, first, last, model, scaled_error``, one row per key)."""
    part = evidence.loc[(evidence["first"] == first) & (evidence["last"] == last)]
    table = part.set_index([schema.SERIES_ID, "forecast_date", MODEL])[LOSS].unstack(MODEL)
    return table.sort_index().reset_index()


def dm_pvalue(d: np.ndarray, lag: int) -> float:
    """One-sided Diebold-Mariano p-value that the mean of the loss differences ``d`` (model
    minus best) is above 0: Newey-West variance with ``lag`` lags, the Harvey-Leybourne-Newbold
    correction, Student t with ``n - 1`` degrees of freedom. 1.0 when ``d`` has no variance
    (identical losses) and its mean is not positive."""
    d = np.asarray(d, np.float64)
    n = len(d)
    if n < 3:
        return float("nan")
    mean = float(d.mean())
    centred = d - mean
    lag = max(0, min(lag, n - 2))
    var = float(centred @ centred) / n
    for k in range(1, lag + 1):
        var += 2 * (1 - k / (lag + 1)) * float(centred[k:] @ centred[:-k]) / n
    if var <= 1e-18:
        return 0.0 if mean > 1e-12 else 1.0
    h = lag + 1
    correction = math.sqrt(max((n + 1 - 2 * h + h * (h - 1) / n) / n, 1e-12))
    t = mean / math.sqrt(var / n) * correction
    return float(special.stdtr(n - 1, -t))  # Student t's survival function, as stats.t.sf


def choose(
    losses: pd.DataFrame,
    series_id: str,
    first: int,
    last: int,
    rule: str = "dm_set",
    alpha: float = 0.1,
    max_members: int = 3,
    reference: str = "naive",
    min_improvement: float = 0.1,
    step: int = 1,
    tolerance: float = 0.0,
    reference_alpha: float = 0.0,
) -> Choice | None:
    """The choice for one series and bucket from its window losses (rows: windows; columns:
    models). Models missing on more than half the windows are left out; the rest are compared
    on the windows all of them have. None when no model has a loss. ``step``: rows between
    windows (the overlap of the h-step errors sets the test's lags). ``tolerance``: the
    ``dm_set`` members' largest MASE relative to the best's, minus 1 (0: any the test ties).
    ``reference_alpha`` (``margin`` and ``margin_dm_set``; 0: off): the margin passes only
    where a Diebold-Mariano test also finds the reference's loss significantly above the best
    model's at that level."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; known: {list(RULES)}")
    table = losses.drop(columns=[schema.SERIES_ID, "forecast_date"], errors="ignore")
    # one row of window losses per model (NumPy: this runs per series and bucket each night)
    names = [str(c) for c in table.columns]
    values = table.to_numpy(np.float64, copy=True).T
    values[np.isinf(values)] = np.nan
    combined = None
    if COMBINED in names:
        at = names.index(COMBINED)
        combined, values = values[at], np.delete(values, at, axis=0)
        names.pop(at)
    if not names or values.shape[1] == 0:
        return None
    coverage = (~np.isnan(values)).sum(axis=1) / values.shape[1]
    left_out = sorted(m for m, c in zip(names, coverage, strict=True) if c <= 0.5)
    kept = coverage > 0.5
    names = [m for m, k in zip(names, kept, strict=True) if k]
    values = values[kept]
    complete = ~np.isnan(values).any(axis=0)  # the windows every model left has
    values = np.ascontiguousarray(values[:, complete])
    if not names or values.shape[1] == 0:
        return None
    means = values.sum(axis=1) / values.shape[1]
    order = np.argsort(means, kind="stable")
    ranked = [names[i] for i in order]  # best first (ties: column order)
    mase = {names[i]: float(means[i]) for i in order}
    row = dict(zip(names, values, strict=True))
    best = ranked[0]
    lag = max(0, math.ceil(last / step) - 1)
    p_worse = {m: dm_pvalue(row[m] - row[best], lag) for m in ranked}
    p_worse[best] = 1.0
    # reference_alpha: the margin passes only where the test finds the reference worse
    beaten = reference not in p_worse or not reference_alpha or p_worse[reference] < reference_alpha
    margin = rule in ("margin", "margin_dm_set")
    if rule == "best":
        members = [best]
    elif rule == "dm":
        ok = reference in p_worse and not (p_worse[reference] < alpha)
        members = [reference] if ok else [best]
    elif rule == "margin":
        members = [margin_pick(best, mase, reference, min_improvement)]
        if not beaten:
            members = [reference]
    elif rule == "combination":
        members = ranked[:max_members]
    elif rule == "dm_combination":
        members = ranked[:max_members]
        if combined is not None and len(members) > 1:
            # scored where the members' forecasts are at hand (an evaluation record keeps
            # losses, not forecasts: its older windows have none)
            mean_loss = combined[complete]
            have = ~np.isnan(mean_loss)
            if have.any():
                p_mean = dm_pvalue(mean_loss[have] - row[best][have], lag)
                p_worse["mean"] = p_mean
                mase["mean"] = float(mean_loss[have].mean())
                best_here = mase[best] if have.all() else float(row[best][have].mean())
                if mase["mean"] > best_here and p_mean < alpha:
                    members = [best]
    elif rule == "dm_mean":
        if reference in row:
            ref = row[reference]
            p_ref = {m: dm_pvalue(ref - row[m], lag) for m in ranked}
            better = [m for m in ranked if m != reference and p_ref[m] < alpha]
            evidence_ref = {m: _finite(v) for m, v in p_ref.items() if m != reference}
        else:
            better, evidence_ref = ranked, {}
        members = better[:max_members] or [reference]
    elif rule == "margin_dm_set" and (
        margin_pick(best, mase, reference, min_improvement) != best or not beaten
    ):
        members = [reference]
    else:  # dm_set, and margin_dm_set where the best model beats the reference by the margin
        limit = mase[best] * (1 + tolerance) if tolerance > 0 else math.inf
        tied = [m for m in ranked if not (p_worse[m] < alpha) and mase[m] <= limit]
        members = tied[:max_members]
    weight = 1.0 / len(members)
    shown = [*ranked, *(["mean"] if "mean" in p_worse else [])]
    evidence = {
        "mase": {m: float(mase[m]) for m in shown},
        "p_worse_than_best": {m: _finite(p_worse[m]) for m in shown},
        "best": best,
        "windows": values.shape[1],
        **({"p_reference_worse": evidence_ref} if rule == "dm_mean" else {}),
        "left_out": left_out,
        "alpha": alpha,
        **({"tolerance": tolerance} if tolerance > 0 and rule.endswith("dm_set") else {}),
        **({"reference_alpha": reference_alpha} if reference_alpha > 0 and margin else {}),
    }
    return Choice(series_id, first, last, rule, dict.fromkeys(members, weight), evidence)


def choose_all(
    rows: pd.DataFrame,
    horizon: int,
    bucket_ends: Sequence[int],
    rule: str = "dm_set",
    evidence: pd.DataFrame | None = None,
    **kwargs: Any,
) -> dict[str, list[Choice]]:
    """Every series' choices, one per horizon bucket, from backtest ``rows`` (one per
    forecast row: ``series_id, forecast_date, horizon, model`` and ``scaled_error``) or, given
    ``evidence``, from its window losses (one per series, window, bucket and model: the
    evaluation record's, :mod:`pipeline_lib.forecasting.evaluation_record`; ``rows`` then serve
    ``dm_combination``'s mean, scored on the windows they hold)."""
    out: dict[str, list[Choice]] = {}
    for first, last in buckets(bucket_ends, horizon):
        if evidence is None:
            losses = window_losses(rows, first, last)
        else:
            losses = bucket_table(evidence, first, last)
        if rule == "dm_combination":
            losses = _with_combination(rows, losses, first, last, kwargs.get("max_members", 3))
        for sid, part in losses.groupby(schema.SERIES_ID, sort=True):
            choice = choose(part, str(sid), first, last, rule, **kwargs)
            if choice is not None:
                out.setdefault(str(sid), []).append(choice)
    return out


def _with_combination(
    rows: pd.DataFrame, losses: pd.DataFrame, first: int, last: int, k: int
) -> pd.DataFrame:
    """``losses`` plus the column :data:`COMBINED`: per window, the loss of the equal-weight
    mean of each series' ``k`` models with the lowest mean loss, from their point forecasts
    (the loss scale of a row: its abs_error over its scaled_error)."""
    part = rows.loc[rows["horizon"].between(first, last)]
    out = []
    for sid, series_losses in losses.groupby(schema.SERIES_ID, sort=False):
        table = series_losses.drop(columns=[schema.SERIES_ID, "forecast_date"]).astype(float)
        top = list(table.mean().dropna().sort_values(kind="stable").index[:k])
        mine = part.loc[(part[schema.SERIES_ID] == sid) & part[MODEL].isin(top)]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (mine["abs_error"] / mine[LOSS]).replace([np.inf, -np.inf], np.nan)
        scale = float(ratio.median()) if ratio.notna().any() else float("nan")
        wide = mine.pivot_table(
            index=["forecast_date", "horizon"], columns=MODEL, values="yhat", aggfunc="first"
        )
        actual = mine.groupby(["forecast_date", "horizon"])["actual"].first()
        complete = wide.reindex(columns=top).dropna()
        loss = (actual.loc[complete.index] - complete.mean(axis=1)).abs() / scale
        by_window = loss.groupby(level="forecast_date").mean()
        out.append(
            series_losses.assign(**{COMBINED: series_losses["forecast_date"].map(by_window)})
        )
    return pd.concat(out, ignore_index=True) if out else losses.assign(**{COMBINED: np.nan})


def margin_pick(
    best: str, mase: Mapping[str, float], reference: str, min_improvement: float
) -> str:
    """The margin rule: ``best`` if the ``reference`` has no MASE or ``best``'s beats it by
    ``min_improvement``, else the reference."""
    ref = float(mase.get(reference, math.nan))
    beats = math.isnan(ref) or float(mase[best]) < (1 - min_improvement) * ref
    return best if beats else reference


def fallback(
    choice: Choice, available: set[str], reference: str, min_improvement: float
) -> Choice | None:
    """What to publish when a member of ``choice`` gave no forecast tonight (a log model after
    a price <= 0, a model whose fit failed): among the ``available`` models (those that did
    forecast this series tonight) scored in the choice's evidence, the best by the bucket's
    backtest MASE if it beats the ``reference``'s by ``min_improvement`` (the margin rule,
    the safe one), else the reference. The rule becomes ``<rule>+fallback`` and the evidence
    records what was chosen first and what was missing. None when no scored model is
    available."""
    scored = choice.evidence.get("mase", {})
    mase = {m: float(v) for m, v in scored.items() if m in available}
    if not mase:
        return None
    best = min(mase, key=lambda m: (mase[m], m))
    pick = margin_pick(best, mase, reference, min_improvement)
    missing = sorted(m for m in choice.weights if m not in available)
    evidence = {**choice.evidence, "fallback": {"chosen": choice.label, "missing": missing}}
    return Choice(
        choice.series_id,
        choice.first,
        choice.last,
        f"{choice.rule}+fallback",
        {pick: 1.0},
        evidence,
    )


def combine(forecasts: pd.DataFrame, choices: Mapping[str, Sequence[Choice]]) -> pd.DataFrame:
    """The published rows: per series and bucket, the weighted mean of the members' forecasts
    (``forecasts``: every model's rows, with ``model``). A (series, target date) is published
    only where every member forecast it; ``model`` is the choice's label.

    Set-based: each member's rows are joined to the first member's on the row key, for all
    choices with the same number of members at once, and the mean is summed in the members'
    order (``0 + v1 w1 + v2 w2 ...``, the same floating-point result as adding the members'
    frames one after the other). One pass over 1,000 series instead of a frame per choice."""
    value_columns = ["yhat", "yhat_lower", "yhat_upper"]
    key = [schema.SERIES_ID, "forecast_date", "target_date", "horizon"]
    plan = pd.DataFrame(
        [
            (sid, h, m, i, w, c.label, len(c.weights))
            for sid, series_choices in choices.items()
            for c in series_choices
            for h in range(c.first, c.last + 1)
            for i, (m, w) in enumerate(c.weights.items())
        ],
        columns=[schema.SERIES_ID, "horizon", MODEL, "_member", "_weight", "_label", "_n"],
    )
    parts = []
    if not plan.empty and not forecasts.empty:
        rows = forecasts[[*key, MODEL, *value_columns]].merge(
            plan, on=[schema.SERIES_ID, "horizon", MODEL], how="inner"
        )
        for n, group in rows.groupby("_n", sort=True):
            out: pd.DataFrame | None = None
            for i in range(int(n)):
                member = group.loc[group["_member"] == i]
                terms = member[value_columns].mul(member["_weight"], axis=0)
                terms = pd.concat([member[[*key, "_label"]], terms], axis=1)
                if out is None:
                    out = terms
                    out[value_columns] = 0.0 + out[value_columns]
                    continue
                out = out.merge(terms, on=[*key, "_label"], suffixes=("", "_next"))
                for col in value_columns:
                    out[col] = out[col] + out.pop(f"{col}_next")
            if out is not None and not out.empty:
                parts.append(out.dropna(subset=value_columns))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=[*key, *value_columns, MODEL])
    out = pd.concat(parts, ignore_index=True).rename(columns={"_label": MODEL})
    out = out[[*key, *value_columns, MODEL]]
    return out.sort_values([schema.SERIES_ID, "forecast_date", "horizon"], ignore_index=True)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
