"""Per series and horizon bucket: the window losses the selection rules read (from tonight's
backtest rows or the evaluation record's), every series' choices (:func:`choose_all`, the
rule of :mod:`pipeline_lib.forecasting.selection` applied to each), and the rows a night
publishes from them (:func:`combine`: one model, or the weighted mean of a combination's
members).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.evaluation.metrics import MODEL
from pipeline_lib.forecasting.selection import COMBINED, LOSS, Choice, choose


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
