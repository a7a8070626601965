"""Planning a backfill: the options a user sets in the Prefect UI, their checks, and the chunks.

A backfill replays the nightly logic for every forecast date of ``start..end``: the dates in
the calendar of at least one of its series (weekends and holidays of every series are left
out, see :func:`forecast_dates`). The dates are cut into chunks spanning
``retrain_every_days`` consecutive days; each chunk starts a model lineage of
its own with a full training on its first date and fine-tunes (or reuses) it on the next ones,
exactly as the nightly would with that cadence. Chunks share nothing but the data, which is
ingested and turned into features once, before them, so they can run in parallel and give the
same models and rows as when run one after the other. Every date sees only data dated on or
before it and only models trained through it (point-in-time correct).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline_lib import paths
from pipeline_lib.config import Settings
from pipeline_lib.db import safe_url
from pipeline_lib.features.calendar import calendar_days
from pipeline_lib.features.stage import load_features
from pipeline_lib.forecasting import registry, tuning

# The backfill's options, typed once: the flow's flat parameters (the Prefect UI renders each
# as a field of the Run form with its default and bounds, described in the flow's docstring,
# and names the field whose value is out of range before a run is created) and
# BackfillOptions share them.
RetrainEvery = Annotated[int, Field(ge=0, le=366)]
SeriesSubset = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field()]
DryRun = bool
ParallelChunks = Annotated[int, Field(ge=1, le=64)]
TaskRunnerName = Literal["threads", "dask"]
DaskAddress = Annotated[str, Field(pattern=r"^$|^[a-z]+://\S+$")]
Recompute = bool


class BackfillOptions(BaseModel):
    """Options of a backfill: the backfill flow's parameters after the dates (described
    there, ``flows/backfill.py``)."""

    model_config = ConfigDict(extra="forbid")

    retrain_every_days: RetrainEvery = 0
    series: SeriesSubset = []
    dry_run: DryRun = False
    parallel_chunks: ParallelChunks = 2
    task_runner: TaskRunnerName = "threads"
    dask_address: DaskAddress = ""
    recompute: Recompute = False

    @field_validator("series")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"series must be distinct ids, got {v}")
        return v

    @property
    def subset(self) -> list[str] | None:
        """The series subset, None for every configured series."""
        return list(self.series) or None


@dataclass(frozen=True)
class Chunk:
    """Consecutive forecast dates and the first date whose model choices they build on: the
    first chunk continues the nightly's lineage (``lineage_start`` = the first date ever); a
    later chunk starts its own (``lineage_start`` = its first date, trained in full)."""

    dates: tuple[dt.date, ...]
    lineage_start: dt.date

    @property
    def start(self) -> dt.date:
        return self.dates[0]

    @property
    def end(self) -> dt.date:
        return self.dates[-1]


@dataclass(frozen=True)
class BackfillPlan:
    start: dt.date
    end: dt.date
    series: tuple[str, ...]
    lineage: str
    retrain_every_days: int
    chunks: tuple[Chunk, ...]

    @property
    def dates(self) -> list[dt.date]:
        return [d for c in self.chunks for d in c.dates]

    def markdown(self) -> str:
        lines = [
            f"**Backfill {self.start} to {self.end}**: {len(self.dates)} forecast dates in "
            f"{len(self.chunks)} chunks of {self.retrain_every_days} days (retraining cadence), "
            f"series {', '.join(self.series)}"
            + (f", selections under lineage `{self.lineage}`" if self.lineage else ""),
            "",
            "| chunk | first date | last date | dates | models |",
            "|---:|---|---|---:|---|",
        ]
        lines += [
            f"| {i} | {c.start} | {c.end} | {len(c.dates)} | "
            + ("continues the champion" if c.lineage_start < c.start else "full training first")
            + " |"
            for i, c in enumerate(self.chunks)
        ]
        return "\n".join(lines)


def today_in(timezone: str) -> dt.date:
    """Today's date where the schedules run."""
    return dt.datetime.now(ZoneInfo(timezone)).date()


class BackfillParameterError(ValueError):
    """A backfill parameter the run cannot use; ``parameter`` names it (as on the Run form)."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter, self.problem = parameter, problem


def check_range(start: dt.date, end: dt.date, today: dt.date, first: dt.date) -> None:
    """Refuse a range a backfill cannot run on, naming the bad bound."""
    if start > end:
        raise BackfillParameterError(
            "end", f"{end} is before start {start}: the backfill start is after its end"
        )
    if end > today:
        raise BackfillParameterError(
            "end", f"{end} is in the future (today is {today}): no data exists for it yet"
        )
    if start < first:
        raise BackfillParameterError(
            "start", f"{start} is before the first date ingested ({first})"
        )


def lineage_of(series: list[str]) -> str:
    """The selection namespace of a subset of the series: stable for the same set."""
    digest = hashlib.sha256(json.dumps(sorted(series)).encode()).hexdigest()[:10]
    return f"subset-{digest}"


def scoped_settings(settings: Settings, series: list[str] | None) -> Settings:
    """``settings`` restricted to ``series`` (None or the configured set: unchanged)."""
    if series is None or sorted(series) == sorted(settings.series_ids):
        return settings
    unknown = sorted(set(series) - set(settings.series_ids))
    if unknown:
        raise BackfillParameterError(
            "series", f"unknown series {unknown}: the configured series are {settings.series_ids}"
        )
    kept = [s for s in settings.series if s.id in series]
    return settings.model_copy(update={"series": kept, "lineage": lineage_of(series)})


def chunk_dates(dates: list[dt.date], size: int, first: dt.date) -> list[Chunk]:
    """The forecast ``dates`` (ascending) cut into chunks spanning ``size`` consecutive days
    from the first date on (a span without a forecast date has no chunk); ``first``: the
    lineage start of the first chunk."""
    spans: dict[int, list[dt.date]] = {}
    for day in dates:
        spans.setdefault((day - dates[0]).days // size, []).append(day)
    cuts = [tuple(days) for _, days in sorted(spans.items())]
    return [Chunk(c, first if i == 0 else c[0]) for i, c in enumerate(cuts)]


def forecast_dates(settings: Settings, start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates of ``start..end`` on which at least one series of ``settings`` has a value
    by its own calendar (``frequency``: business days, every day, or an exchange's sessions):
    a weekend or a holiday of every series is no forecast date."""
    days = {d for f in set(settings.frequencies.values()) for d in calendar_days(start, end, f)}
    if not days:
        calendars = sorted(set(settings.frequencies.values()))
        raise ValueError(
            f"backfill {start}..{end} holds no forecast date: no day of it is in the series' "
            f"calendars ({', '.join(calendars)})"
        )
    return sorted(days)


def plan_backfill(
    settings: Settings,
    start: dt.date,
    end: dt.date,
    options: BackfillOptions,
    today: dt.date | None = None,
) -> BackfillPlan:
    """Check the range and the options against ``settings`` and cut the dates into chunks."""
    today = today or today_in(settings.orchestration.timezone)
    check_range(start, end, today, settings.start_date)
    scoped = scoped_settings(settings, options.subset)
    every = options.retrain_every_days or settings.training.retrain_every_days
    return BackfillPlan(
        start=start,
        end=end,
        series=tuple(scoped.series_ids),
        lineage=scoped.lineage,
        retrain_every_days=every,
        chunks=tuple(chunk_dates(forecast_dates(scoped, start, end), every, settings.start_date)),
    )


def date_fingerprint(
    settings: Settings, as_of: dt.date, chunk_start: dt.date, lineage_start: dt.date
) -> str:
    """What a backfill date's results are a function of: the code's settings (the database by
    its masked URL), the tuned configuration, the date, its chunk, the model choice the chunk
    starts from, and the features of every series up to the date. Two runs with the same
    fingerprint write the same rows, so the second may skip the date."""
    features = load_features(settings, as_of)
    before = registry.latest_selection(
        paths.models_dir(settings.data_dir), chunk_start, lineage_start, settings.lineage
    )
    state = {
        "settings": tuning.apply_best(settings, as_of).model_dump(
            mode="json", exclude={"database_url", "credentials"}
        ),
        "database": safe_url(settings.db_url),
        "as_of": as_of.isoformat(),
        "chunk": [chunk_start.isoformat(), lineage_start.isoformat()],
        "starts_from": before.to_dict() if before else None,
        "features": hashlib.sha256(
            pd.util.hash_pandas_object(features, index=False).to_numpy().tobytes()
        ).hexdigest(),
        "rows": int(len(features)),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
