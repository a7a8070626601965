"""What curated data changed since the features were last built: a queue of change notes.

Every commit of curated data (:func:`pipeline_lib.ingest.curate.commit_batches`) first writes one
note, ``state/curated_changes/<UTC time>-<random>.json``: per data set and key (a series or a
weather location), the earliest date its new or revised rows are for (and, for covariate values, the
earliest issue date among them). The note is written *before* the rows, so a commit that dies
half way leaves a note too much (some features rebuilt for nothing), never one too few. The
features stage (:mod:`pipeline_lib.features.stage`) is the only reader: it folds the notes into
its own state, then removes them (:func:`take_changes`, :func:`drop_changes`).

The notes assume what the run slot (``flows.slot``) gives: no commit runs while the features are
being refreshed.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join


def changes_dir(data_dir: str) -> str:
    return join(data_dir, "state", "curated_changes")


@dataclass(frozen=True)
class Change:
    """Rows of ``dataset`` for ``key`` dated ``since`` or later were written (new or revised);
    ``issued``: covariate values only, the earliest issue date among them."""

    dataset: str
    key: str
    since: dt.date
    issued: dt.date | None = None


def record_changes(data_dir: str, changes: Iterable[Change]) -> str | None:
    """Write one note of ``changes``; returns its URL (None: nothing to note)."""
    changes = sorted(changes, key=lambda c: (c.dataset, c.key))
    if not changes:
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    url = join(changes_dir(data_dir), f"{stamp}-{uuid.uuid4().hex[:8]}.json")
    entries = [
        {
            "dataset": c.dataset,
            "key": c.key,
            "since": c.since.isoformat(),
            "issued": c.issued.isoformat() if c.issued else None,
        }
        for c in changes
    ]
    atomic_write_bytes(url, json.dumps(entries, indent=1).encode())
    return url


def take_changes(data_dir: str) -> tuple[list[Change], list[str]]:
    """Every change noted and not yet dropped, and the notes' URLs (to drop once the changes
    are folded in elsewhere)."""
    fs, root = filesystem(changes_dir(data_dir))
    if not fs.exists(root):
        return [], []
    paths = sorted(p for p in fs.ls(root, detail=False) if str(p).endswith(".json"))
    changes: list[Change] = []
    for path in paths:
        with fs.open(path, "rb") as f:
            entries = json.load(f)
        changes += [
            Change(
                e["dataset"],
                e["key"],
                dt.date.fromisoformat(e["since"]),
                dt.date.fromisoformat(e["issued"]) if e.get("issued") else None,
            )
            for e in entries
        ]
    return changes, [str(p) for p in paths]


def drop_changes(data_dir: str, paths: Iterable[str]) -> None:
    """Remove the notes at ``paths`` (from :func:`take_changes`)."""
    fs, _ = filesystem(changes_dir(data_dir))
    for path in paths:
        if fs.exists(path):
            fs.rm(path)
