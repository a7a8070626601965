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

This module is the rule for one series and bucket (:func:`choose`); the window losses per
bucket, every series' choices and the published rows are
:mod:`pipeline_lib.forecasting.per_bucket`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
