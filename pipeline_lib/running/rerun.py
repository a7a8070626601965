"""A night already done: a forecast run of a date with nothing new since the run that made its
forecasts answers from that run, instead of training, backtesting and publishing them again.

The forecast stage is deterministic: the same settings, curated data, models folder and SQL give
the same rows. So every successful forecast run records in its ``pipeline_runs`` details the
**state** it left (:func:`night_state`): a digest of its as-of date, lineage start, the
settings it ran with (tuned ones included) and a listing (path, size, modification stamp) of
the curated data and of the models folder (less the baselines' and the base refits' caches,
which only save time) as the run left them. A later forecast run of the same as-of date is
already done (:func:`already_done`) when:

- it is not a forced retraining;
- the newest successful forecast run is that night's (no other night published since, so the
  SQL tables the monitoring reads are as it left them);
- the state now is the state that run recorded.

Any change (a new or rewritten curated file, a model saved, a config edit, another night in
between) gives a full night: the check can cost a night's work, never skip one that had work.
The reusing run is recorded as succeeded with the earlier run's summary, ``reused`` naming it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import Engine, select

from pipeline_lib import paths, schema
from pipeline_lib.config import Settings
from pipeline_lib.db.tables import pipeline_runs
from pipeline_lib.store.fs import filesystem

FLOW = "forecast"
STATE = "state"  # the key of the state digest in a run's details
REUSED = "reused"  # the key naming the run a reusing run answered from
RUN_OWN = ("parent_run_id",)  # details that belong to the run itself, never copied
SKIPPED_MODEL_FOLDERS = ("baselines", "refits")  # caches: what they hold changes no result
_STAMPS = ("mtime", "LastModified", "last_modified", "updated", "ETag", "etag", "md5Hash")


def night_state(settings: Settings, as_of: dt.date, lineage_start: dt.date | None) -> str:
    """The digest of what a forecast run of ``as_of`` reads (see the module doc)."""
    digest = hashlib.sha256()
    head = {
        "as_of": as_of.isoformat(),
        "lineage_start": lineage_start.isoformat() if lineage_start else None,
        "settings": settings.model_dump(mode="json"),
    }
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    curated = [paths.curated_dir(settings.data_dir, d) for d in _CURATED]
    for url in [*curated, paths.models_dir(settings.data_dir)]:
        digest.update(f"\n{url}\n".encode())
        for line in _listing(url):
            digest.update(line.encode())
    return digest.hexdigest()


_CURATED = (schema.PRICES, schema.WEATHER, schema.COVARIATES)


def _listing(url: str) -> list[str]:
    """One line per file under ``url`` (relative path, size, modification stamp), sorted."""
    fs, root = filesystem(url)
    if not fs.exists(root):
        return []
    root = root.rstrip("/")
    lines = []
    for path, info in fs.find(root, detail=True).items():
        relative = path[len(root) :].lstrip("/")
        if relative.split("/", 1)[0] in SKIPPED_MODEL_FOLDERS:
            continue
        stamp = next((str(info[k]) for k in _STAMPS if info.get(k) is not None), "")
        lines.append(f"{relative}\t{info.get('size')}\t{stamp}\n")
    return sorted(lines)


def already_done(
    engine: Engine, state: str, as_of: dt.date, retrain: bool = False
) -> dict[str, Any] | None:
    """The details to record for a run of ``as_of`` in ``state`` that has nothing to do (the
    earlier run's summary and ``reused``: its run id and why), or None: run the night."""
    if retrain:
        return None
    query = (
        select(pipeline_runs.c.run_id, pipeline_runs.c.as_of, pipeline_runs.c.details)
        .where(pipeline_runs.c.flow == FLOW, pipeline_runs.c.status == "succeeded")
        .order_by(pipeline_runs.c.finished_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        newest = conn.execute(query).first()
    if newest is None or newest.as_of != as_of:
        return None
    details = newest.details if isinstance(newest.details, dict) else json.loads(newest.details)
    if not details or details.get(STATE) != state:
        return None
    earlier = details.get(REUSED, {}).get("run_id", newest.run_id)  # the run that did the work
    why = (
        f"nothing new since run {earlier} forecast {as_of.isoformat()}: the same settings, "
        "curated data and models, and no other night published since; its forecasts stand"
    )
    own = {k: v for k, v in details.items() if k not in RUN_OWN}
    return {**own, REUSED: {"run_id": earlier, "reason": why}}
