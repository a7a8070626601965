"""The feature set: which columns a model reads, derived from the config and stored with it.

Every input beyond the target and the built-in price features is a named covariate with a role:

- ``past``: observed up to the forecast date (actual load, realised weather). The feature row
  of date d holds the value of d; it is an input of the past steps only.
- ``future``: known for target dates up to ``known_ahead`` days after the forecast date
  (day-ahead load, wind and solar forecasts). The feature row of date d holds its own value
  (column ``name``: the value for d, as known on d, an input of the past steps like a past
  covariate) and **lead columns** ``name@h`` for h = 1..known_ahead: the value for the h-th
  target date after d (the series' own calendar: business days, an exchange's sessions or
  calendar days; :func:`pipeline_lib.features.calendar.future_dates`), as issued on or before d;
  NaN where the target date is more than ``known_ahead`` days after d, or where no value had
  been issued by d. A forecast from origin d reads the lead columns of row d only, so
  it can never see a value issued after d, in production, backtests and backfills alike; a NaN
  lead is masked (the model is told it is unknown), never filled.

The lead columns of one covariate are ``known_ahead`` wide whatever the frequency: for a
business-day series a lead can be NaN inside ``known_ahead`` steps (Friday -> Monday is three
days), which the mask says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline_lib import schema


def lead_column(name: str, h: int) -> str:
    """The column of covariate ``name``'s value for the ``h``-th target date (``load@1``)."""
    return f"{name}@{h}"


@dataclass(frozen=True)
class FutureCovariate:
    """A covariate known ahead: its values for target dates up to ``known_ahead`` days after the
    forecast date are known on the forecast date."""

    name: str
    known_ahead: int

    @property
    def lead_columns(self) -> list[str]:
        return [lead_column(self.name, h) for h in range(1, self.known_ahead + 1)]


@dataclass(frozen=True)
class FeatureSet:
    """The inputs of a model, beyond ``y`` and the built-in features of ``schema``.

    ``past_covariates``: names of the past covariates (one column each).
    ``future_covariates``: the known-ahead covariates (their own column and their leads).
    The empty set is the behaviour before covariates: the built-in columns only.
    """

    past_covariates: tuple[str, ...] = ()
    future_covariates: tuple[FutureCovariate, ...] = field(default_factory=tuple)

    @property
    def past_columns(self) -> list[str]:
        """Columns read at past steps (scaled), after ``y``: the built-in past features, the
        past covariates, then each future covariate's own-date value."""
        own = [c.name for c in self.future_covariates]
        return [*schema.PAST_FEATURES, *self.past_covariates, *own]

    @property
    def lead_columns(self) -> list[str]:
        """Every lead column, covariate by covariate, h = 1..known_ahead."""
        return [col for c in self.future_covariates for col in c.lead_columns]

    @property
    def covariate_names(self) -> list[str]:
        return [*self.past_covariates, *(c.name for c in self.future_covariates)]

    @property
    def max_known_ahead(self) -> int:
        return max((c.known_ahead for c in self.future_covariates), default=0)

    @property
    def columns(self) -> list[str]:
        """The feature frame's columns: ``schema.FEATURE_COLUMNS`` then the covariates' own
        columns, then the lead columns."""
        return [*schema.FEATURE_COLUMNS, *self.covariate_names, *self.lead_columns]

    def without_future(self) -> FeatureSet:
        """The same inputs without the future covariates (a bench's ablation)."""
        return FeatureSet(past_covariates=self.past_covariates)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record, stored with each model."""
        return {
            "past_covariates": list(self.past_covariates),
            "future_covariates": [
                {"name": c.name, "known_ahead": c.known_ahead} for c in self.future_covariates
            ],
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any] | None) -> FeatureSet:
        """The record of :meth:`to_dict`; None (a model saved before covariates) is empty."""
        if not record:
            return cls()
        return cls(
            past_covariates=tuple(record.get("past_covariates", ())),
            future_covariates=tuple(
                FutureCovariate(str(c["name"]), int(c["known_ahead"]))
                for c in record.get("future_covariates", ())
            ),
        )

    @classmethod
    def of(cls, past: Iterable[str] = (), future: Iterable[tuple[str, int]] = ()) -> FeatureSet:
        """A feature set from names and (name, known_ahead) pairs, in sorted order."""
        return cls(
            past_covariates=tuple(sorted(past)),
            future_covariates=tuple(FutureCovariate(n, k) for n, k in sorted(future)),
        )
