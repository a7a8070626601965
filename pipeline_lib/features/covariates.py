"""Covariate columns of the feature rows, point in time (see :mod:`pipeline_lib.features.spec`).

Input: the curated covariate values as issued (long, ``schema.COVARIATE_COLUMNS``); a value for
day d may have been issued several times (a revised forecast). The feature row of series s and
date d gets, for each covariate, the value for d and (future covariates) the values for its next
``known_ahead`` target dates, each the latest issued on or before d, so nothing issued after d
ever reaches the row: a revision issued later changes nothing dated before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.features.calendar import dates_ahead, future_dates
from pipeline_lib.features.spec import FeatureSet, lead_column

_ROW = "_row"
_TARGET = "_target"


def add_covariates(
    feats: pd.DataFrame,
    values: pd.DataFrame,
    feature_set: FeatureSet,
    frequencies: Mapping[str, str],
) -> pd.DataFrame:
    """A copy of ``feats`` (one row per series and date) with the feature set's covariate
    columns: each covariate's value for the row's date and the lead columns ``name@h`` (the
    value for the h-th target date after the row's date when that date is at most
    ``known_ahead`` days later), each as last issued on or before the row's date; NaN where
    none was issued. ``frequencies``: the series' calendars (``"B"``, ``"D"`` or an exchange
    calendar code, see :mod:`pipeline_lib.features.calendar`)."""
    out = feats.reset_index(drop=True).copy()
    for column in [*feature_set.covariate_names, *feature_set.lead_columns]:
        out[column] = np.nan
    if out.empty or values.empty or not feature_set.covariate_names:
        return out
    queries = [_own_dates(out, name) for name in feature_set.covariate_names]
    for c in feature_set.future_covariates:
        queries += _lead_dates(out, c.name, c.known_ahead, frequencies)
    query = pd.concat(queries, ignore_index=True)
    found = _as_issued(query, values)
    for column, part in found.groupby("_column", sort=False):
        out.loc[part[_ROW].to_numpy(), str(column)] = part[schema.VALUE].to_numpy()
    return out


def _own_dates(feats: pd.DataFrame, name: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            _ROW: feats.index.to_numpy(),
            schema.SERIES_ID: feats[schema.SERIES_ID].to_numpy(),
            schema.COVARIATE: name,
            schema.DATE: feats[schema.DATE].to_numpy(),
            _TARGET: feats[schema.DATE].to_numpy(),
            "_column": name,
        }
    )


def _lead_dates(
    feats: pd.DataFrame, name: str, known_ahead: int, frequencies: Mapping[str, str]
) -> list[pd.DataFrame]:
    """One query frame per lead h: the h-th target date after each row's date, kept only
    where it lies at most ``known_ahead`` days after it."""
    dates = pd.DatetimeIndex(feats[schema.DATE]).as_unit("ns")
    freq = feats[schema.SERIES_ID].map(lambda s: frequencies.get(s, "B")).to_numpy()
    targets = np.empty((len(dates), known_ahead), "datetime64[ns]")  # [N, known_ahead]
    for f in pd.unique(freq):
        rows = freq == f
        targets[rows] = dates_ahead(dates.to_numpy()[rows], known_ahead, str(f))
    parts = []
    for h in range(1, known_ahead + 1):
        target = targets[:, h - 1]
        near = (target - dates.to_numpy()) <= np.timedelta64(known_ahead, "D")
        parts.append(
            pd.DataFrame(
                {
                    _ROW: feats.index.to_numpy()[near],
                    schema.SERIES_ID: feats[schema.SERIES_ID].to_numpy()[near],
                    schema.COVARIATE: name,
                    schema.DATE: dates.to_numpy()[near],
                    _TARGET: target[near],
                    "_column": lead_column(name, h),
                }
            )
        )
    return parts


def _as_issued(query: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """For each query row (series, covariate, row date, target date): the value for the
    target date last issued on or before the row date (query rows without one dropped)."""
    v = values[[schema.SERIES_ID, schema.COVARIATE, schema.DATE, schema.ISSUED, schema.VALUE]]
    v = v.rename(columns={schema.DATE: _TARGET}).dropna(subset=[schema.VALUE])
    v = v.assign(
        **{
            _TARGET: pd.to_datetime(v[_TARGET]).astype("datetime64[ns]"),
            schema.ISSUED: pd.to_datetime(v[schema.ISSUED]).astype("datetime64[ns]"),
        }
    )
    q = query.assign(**{schema.DATE: pd.to_datetime(query[schema.DATE]).astype("datetime64[ns]")})
    merged = q.merge(v, on=[schema.SERIES_ID, schema.COVARIATE, _TARGET], how="inner")
    merged = merged.loc[merged[schema.ISSUED] <= merged[schema.DATE]]
    merged = merged.sort_values([_ROW, "_column", schema.ISSUED], kind="stable")
    return merged.drop_duplicates([_ROW, "_column"], keep="last")


@dataclass(frozen=True)
class MissingCovariate:
    """A covariate value that tonight's forecast needs and that has not been issued."""

    series_id: str
    covariate: str
    role: str
    dates: tuple[dt.date, ...]
    policy: str

    def describe(self) -> str:
        days = ", ".join(d.isoformat() for d in self.dates[:5])
        more = f" and {len(self.dates) - 5} more" if len(self.dates) > 5 else ""
        what = (
            "not issued for the forecast's target dates"
            if self.role == "future"
            else "stopped arriving: no value for"
        )
        name = f"{self.role} covariate {self.covariate!r}"
        return f"series {self.series_id}: {name} {what} {days}{more}"


def missing_covariates(
    feats: pd.DataFrame,
    declared: Mapping[str, Mapping[str, tuple[str, int, str]]],
    frequencies: Mapping[str, str],
    as_of: dt.date,
) -> list[MissingCovariate]:
    """What tonight's forecast (from each series' last row on or before ``as_of``) lacks.

    ``declared`` maps a series to its covariates: name -> (role, known_ahead, missing policy).
    A future covariate lacks the target dates within ``known_ahead`` days whose lead is NaN;
    a past covariate (or a future one's own-date value) lacks the days from its newest value
    up to the last row.
    """
    found: list[MissingCovariate] = []
    rows = feats.loc[feats[schema.DATE] <= pd.Timestamp(as_of)]
    for sid, part in rows.groupby(schema.SERIES_ID, sort=True):
        covariates = declared.get(str(sid), {})
        if not covariates or part.empty:
            continue
        part = part.sort_values(schema.DATE)
        last = part.iloc[-1]
        last_day = pd.Timestamp(last[schema.DATE]).date()
        for name, (role, known_ahead, policy) in sorted(covariates.items()):
            if role == "future":
                freq = frequencies.get(str(sid), "B")
                ahead = future_dates(last_day, known_ahead, freq)
                lacking = [
                    t.date()
                    for h, t in enumerate(ahead, start=1)
                    if (t.date() - last_day).days <= known_ahead
                    and pd.isna(last.get(lead_column(name, h)))
                ]
            else:
                observed = part.loc[part[name].notna(), schema.DATE]
                newest = observed.max() if not observed.empty else None
                stale = (
                    part[schema.DATE] > newest
                    if newest is not None
                    else pd.Series(True, index=part.index)
                )
                lacking = [pd.Timestamp(d).date() for d in part.loc[stale, schema.DATE]]
            if lacking:
                found.append(MissingCovariate(str(sid), name, role, tuple(lacking), policy))
    return found
