"""The retraining policy's reading of the monitoring rows: do drift or decay call for a full
retraining tonight?

:func:`assess` takes the night's input-drift and decay rows (the ``drift_metrics`` layout,
see :mod:`pipeline_lib.monitoring.monitor`) computed before training against the current model, and
counts what the policy (``[retrain_policy]``, :class:`RetrainPolicyConfig`) watches:

- a **drifted pair**: a (series, watched feature) whose input-drift rows flag at least
  ``min_agreeing_metrics`` of psi, ks_pvalue, wasserstein_std, mean_shift and std_ratio. The
  metrics are not independent, but a lone flag is what a stationary but persistent feature
  gives most often (``bench/drift_false_alarms.py``); agreement is what a real shift gives.
- a **decayed series**: its all-horizons ``forecast_error`` row flags one of
  ``decay_metrics`` (per-horizon rows are shown, not counted: with 14 of them one would
  almost always be off by chance).

Only **new** flags count towards the trigger: a flag already present when the last full
training ran (``known``, recorded in that model's metrics as ``drift_flags``) has had its
retraining. Input drift against a three-year training window and decay over the last months
do not clear the night after a retraining: counting them again retrained the bundled sample
every cooldown (45 full trainings in 2015 instead of 12, ``bench/retrain_policy.py``).

The verdict triggers when either count of new flags reaches what is needed (0 turns that
trigger off): its configured count, or, in a large panel, a share of what was checked tonight
(``input_drift_share`` of the watched pairs, ``decay_share`` of the series), whichever is more.
A fixed count alone is met by chance as the series grow: with one pair needed, a hundred
series of which each false-alarms now and then retrain in full on every cooldown.
:func:`pipeline_lib.forecasting.retrain.decide` applies the verdict after the other reasons (no
model, settings changed, the cadence) and holds it back within ``cooldown_days`` of the last
full training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from pipeline_lib import schema
from pipeline_lib.config import RetrainPolicyConfig
from pipeline_lib.monitoring.decay import ERROR_FEATURE

# the input-drift metrics that carry a threshold of their own (ks_statistic has the p-value's)
AGREEING_METRICS = ("psi", "ks_pvalue", "wasserstein_std", "mean_shift", "std_ratio")


@dataclass(frozen=True)
class Flag:
    """One counted flag group: a drifted (series, feature) or a decayed series."""

    kind: str  # "input_drift" or "decay"
    series_id: str
    feature: str
    metrics: dict[str, float]  # the flagged metrics and their values
    new: bool = True  # False: already flagged when the last full training ran

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.series_id, self.feature)

    def label(self) -> str:
        shown = ", ".join(f"{m} {_fmt(v)}" for m, v in self.metrics.items())
        return f"{self.series_id} {self.feature} ({shown})"


@dataclass(frozen=True)
class DriftVerdict:
    """What the policy counted on one night, and whether that calls for a full retraining.

    ``trigger``: ``drift``, ``decay`` or ``drift+decay`` when it does, else ``""``."""

    retrain: bool
    reason: str
    trigger: str = ""
    drifted: list[Flag] = field(default_factory=list)
    decayed: list[Flag] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def keys(self) -> list[list[str]]:
        """Every counted flag's (kind, series_id, feature), new or known: what a full training
        tonight records as known (JSON-friendly lists)."""
        return [list(f.key) for f in (*self.drifted, *self.decayed)]


def _reached(n: int, count: int) -> bool:
    return count > 0 and n >= count


def needed(count: int, share: float, checked: int) -> int:
    """The new flags that trigger: ``count``, or ``share`` of the ``checked`` pairs or series
    where that is more (rounded up); 0 (never) when ``count`` is 0."""
    if count <= 0:
        return 0
    # less a hair, so that a share landing on a whole number (0.1 x 30 = 3.0000000000000004 in
    # floating point) needs that number
    return max(count, math.ceil(share * checked - 1e-9))


def _watched(rows: pd.DataFrame, cfg: RetrainPolicyConfig) -> pd.DataFrame:
    """The input-drift rows of the watched features' thresholded metrics."""
    return rows[rows["feature"].isin(cfg.watch_features) & rows["metric"].isin(AGREEING_METRICS)]


def _all_horizons(rows: pd.DataFrame) -> pd.DataFrame:
    """The decay rows of each series' all-horizons forecast error."""
    return rows[rows["feature"] == ERROR_FEATURE]


def checked_pairs(rows: pd.DataFrame, cfg: RetrainPolicyConfig) -> int:
    """The watched (series, feature) pairs with input-drift rows tonight."""
    if rows.empty:
        return 0
    return len(_watched(rows, cfg).drop_duplicates([schema.SERIES_ID, "feature"]))


def checked_series(rows: pd.DataFrame) -> int:
    """The series with an all-horizons decay row tonight."""
    if rows.empty:
        return 0
    return int(_all_horizons(rows)[schema.SERIES_ID].nunique())


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3g}"


def drifted_pairs(rows: pd.DataFrame, cfg: RetrainPolicyConfig) -> list[Flag]:
    """The watched (series, feature) pairs whose flagged metrics agree (see the module doc)."""
    if rows.empty:
        return []
    watched = _watched(rows, cfg)
    watched = watched[watched["is_drift"].astype(bool)]
    flags = []
    for (series, feature), group in watched.groupby([schema.SERIES_ID, "feature"], sort=True):
        if len(group) >= cfg.min_agreeing_metrics:
            flags.append(Flag("input_drift", str(series), str(feature), _metrics(group)))
    return flags


def decayed_series(rows: pd.DataFrame, cfg: RetrainPolicyConfig) -> list[Flag]:
    """The series whose all-horizons decay row flags one of the counted metrics."""
    if rows.empty:
        return []
    errors = _all_horizons(rows)
    hit = errors[errors["metric"].isin(cfg.decay_metrics) & errors["is_drift"].astype(bool)]
    return [
        Flag("decay", str(series), ERROR_FEATURE, _metrics(group))
        for series, group in hit.groupby(schema.SERIES_ID, sort=True)
    ]


def _metrics(group: pd.DataFrame) -> dict[str, float]:
    """A flag group's flagged metrics and their values."""
    return {m: float(v) for m, v in zip(group["metric"], group["value"], strict=True)}


def assess(
    rows: pd.DataFrame,
    cfg: RetrainPolicyConfig,
    known: Iterable[Sequence[str]] = (),
) -> DriftVerdict:
    """The policy's verdict on a night's input-drift and decay rows (module doc); ``known``:
    the (kind, series_id, feature) flags recorded by the last full training."""
    seen = {tuple(k) for k in known}
    drifted = [replace(f, new=f.key not in seen) for f in drifted_pairs(rows, cfg)]
    decayed = [replace(f, new=f.key not in seen) for f in decayed_series(rows, cfg)]
    new_drifted = [f for f in drifted if f.new]
    new_decayed = [f for f in decayed if f.new]
    pairs, series = checked_pairs(rows, cfg), checked_series(rows)
    share = cfg.input_drift_share
    drift_needed = needed(cfg.input_drift_count, share, pairs)
    decay_needed = needed(cfg.decay_count, cfg.decay_share, series)
    triggers, parts = [], []
    if _reached(len(new_drifted), drift_needed):
        triggers.append("drift")
        parts.append(
            f"new input drift on {len(new_drifted)} watched (series, feature) "
            f"({_rule(drift_needed, 'input_drift', cfg.input_drift_count, share, pairs)}): "
            + "; ".join(f.label() for f in new_drifted)
        )
    if _reached(len(new_decayed), decay_needed):
        triggers.append("decay")
        parts.append(
            f"new decay on {len(new_decayed)} series "
            f"({_rule(decay_needed, 'decay', cfg.decay_count, cfg.decay_share, series)}): "
            + "; ".join(f.label() for f in new_decayed)
        )
    if not cfg.enabled:
        reason = "drift and decay do not trigger retraining (retrain_policy.enabled = false)"
        return DriftVerdict(False, reason, "", drifted, decayed)
    if triggers:
        return DriftVerdict(True, " and ".join(parts), "+".join(triggers), drifted, decayed)
    old = len(drifted) - len(new_drifted) + len(decayed) - len(new_decayed)
    reason = (
        f"{len(new_drifted)} newly drifted (series, feature), {_needed(drift_needed)}; "
        f"{len(new_decayed)} newly decayed series, {_needed(decay_needed)}"
    )
    if old:
        reason += f"; {old} flag(s) already present at the last full training"
    return DriftVerdict(False, reason, "", drifted, decayed)


def _needed(count: int) -> str:
    return f"{count} needed" if count > 0 else "not a trigger"


def _rule(need: int, name: str, count: int, share: float, checked: int) -> str:
    """What was needed and why, e.g. ``decay_count=2`` or ``10 needed: input_drift_share=0.1
    of 100 checked``."""
    if need > count:
        return f"{need} needed: {name}_share={share:g} of {checked} checked"
    return f"{name}_count={count}"
