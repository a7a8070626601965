"""How far each series' stored features are built, so a night rebuilds only what changed.

``state/features.json`` holds, per series: the digest of what its features are computed from
(the feature set, the series' covariates, weather location and calendar, and
``FEATURES_VERSION``), ``through`` (the newest as-of date built) and ``dirty_from`` (the earliest
date whose features may be stale: curated rows changed from there, noted by
:mod:`pipeline_lib.store.changes`, not yet rebuilt). A refresh of as-of date t rebuilds a series
from :meth:`SeriesState.start`: everything when the digest differs or the series is new, else
from its earliest stale day or the day after ``through``, whichever is earlier; nothing when
neither is on or before t. Deleting the file forces a full rebuild (the stored rows are compared
and only those that differ are written).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from pipeline_lib import schema
from pipeline_lib.config import Settings
from pipeline_lib.features.build import FEATURES_VERSION
from pipeline_lib.store.changes import Change
from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join

_DAY = dt.timedelta(days=1)


def state_url(data_dir: str) -> str:
    return join(data_dir, "state", "features.json")


@dataclass(frozen=True)
class SeriesState:
    """One series' features: built from ``digest``'s inputs through ``through``, stale from
    ``dirty_from`` (None: nothing stale)."""

    digest: str
    through: dt.date
    dirty_from: dt.date | None = None

    def start(self, digest: str, as_of: dt.date) -> tuple[bool, dt.date | None]:
        """(anything to build for ``as_of``, the first date to build; None: every date)."""
        if digest != self.digest:
            return True, None
        starts = []
        if self.dirty_from is not None and self.dirty_from <= as_of:
            starts.append(self.dirty_from)
        if as_of > self.through:
            starts.append(self.through + _DAY)
        return (True, min(starts)) if starts else (False, None)

    def built(self, digest: str, as_of: dt.date) -> SeriesState:
        """The state once every date up to ``as_of`` is built from ``digest``'s inputs: what
        lies after ``as_of`` and was stale (or built from other inputs) stays stale."""
        dirty = None
        if self.through > as_of:  # rows after as_of were built before and are left as they are
            if digest != self.digest:
                dirty = as_of + _DAY
            elif self.dirty_from is not None:
                dirty = max(as_of + _DAY, self.dirty_from)
        return SeriesState(digest, max(self.through, as_of), dirty)


def series_digests(settings: Settings) -> dict[str, str]:
    """Per series, the digest of what its features are computed from."""
    feature_set = settings.feature_set
    columns = [*feature_set.past_columns, *feature_set.lead_columns]
    out = {}
    for s in settings.series:
        inputs = {
            "version": FEATURES_VERSION,
            "columns": columns,
            "covariates": [c.model_dump(mode="json") for c in s.covariates],
            "weather": s.weather.name if s.weather else None,
            "frequency": s.dates_frequency,
        }
        text = json.dumps(inputs, sort_keys=True, default=str)
        out[s.id] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def read_state(data_dir: str) -> dict[str, SeriesState]:
    fs, path = filesystem(state_url(data_dir))
    if not fs.exists(path):
        return {}
    with fs.open(path, "rb") as f:
        entries = json.load(f)
    return {
        sid: SeriesState(
            e["digest"],
            dt.date.fromisoformat(e["through"]),
            dt.date.fromisoformat(e["dirty_from"]) if e.get("dirty_from") else None,
        )
        for sid, e in entries.items()
    }


def write_state(data_dir: str, state: dict[str, SeriesState]) -> None:
    entries = {sid: asdict(s) for sid, s in sorted(state.items())}
    text = json.dumps(entries, indent=1, default=lambda d: d.isoformat())
    atomic_write_bytes(state_url(data_dir), text.encode())


def fold_changes(
    state: dict[str, SeriesState], changes: Iterable[Change], settings: Settings
) -> dict[str, SeriesState]:
    """``state`` with each change marking the series it reaches stale from the first feature
    row it can alter: a price from its date, a location's weather in every series there, a
    covariate value from ``known_ahead`` days before its date (the rows whose leads reach it)
    but not before its issue date (no row sees a value issued after it). Series without a
    state are left out (they are built whole)."""
    reach = {s.id: max((c.known_ahead for c in s.covariates), default=0) for s in settings.series}
    at: dict[str, list[str]] = {}  # weather location -> the series there
    for s in settings.series:
        if s.weather is not None:
            at.setdefault(s.weather.name, []).append(s.id)
    out = dict(state)
    for change in changes:
        if change.dataset == schema.WEATHER:
            hits = [(sid, change.since) for sid in at.get(change.key, [])]
        elif change.dataset == schema.COVARIATES:
            since = change.since - dt.timedelta(days=reach.get(change.key, 0))
            hits = [(change.key, max(since, change.issued) if change.issued else since)]
        else:
            hits = [(change.key, change.since)]
        for sid, since in hits:
            if sid in out:
                old = out[sid].dirty_from
                out[sid] = replace(out[sid], dirty_from=since if old is None else min(old, since))
    return out
