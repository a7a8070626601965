"""Quarantine: keep a failed batch, its validation report and its raw payload paths together.

Layout: ``<data_dir>/quarantine/<dataset>/<batch_name>-<UTC timestamp>/`` with
``batch.parquet`` (the batch as validated), ``report.json`` (the ValidationReport, GX's result
included) and ``payloads.json`` (paths of the raw payloads, which stay in the append-only raw/).
Curated data is never touched. ``data_dir`` is a local path or any fsspec URL.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Sequence

import fsspec
import pandas as pd

from pipeline_lib.validation.report import ValidationReport

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=\-]+")


def quarantine_batch(
    data_dir: str,
    report: ValidationReport,
    df: pd.DataFrame,
    payload_files: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> str:
    """Write the batch, its report and its payload list to a new quarantine folder.

    Returns the folder as a URL (``file:///...`` for a local ``data_dir``). ``now`` (UTC) fixes
    the timestamp, for tests; folders never collide: a numeric suffix is added if one exists.
    """
    fs, root = fsspec.core.url_to_fs(data_dir)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    base = (
        f"{root.rstrip('/')}/quarantine/{_safe(report.dataset)}/{_safe(report.batch_name)}-{stamp}"
    )
    folder, n = base, 1
    while fs.exists(folder):
        folder, n = f"{base}-{n}", n + 1
    fs.makedirs(folder, exist_ok=True)

    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    fs.pipe_file(f"{folder}/batch.parquet", buffer.getvalue())
    fs.pipe_file(f"{folder}/report.json", _dumps(report.to_dict()))
    payloads = {
        "dataset": report.dataset,
        "batch_name": report.batch_name,
        "payload_files": list(payload_files),
    }
    fs.pipe_file(f"{folder}/payloads.json", _dumps(payloads))
    return fs.unstrip_protocol(folder)


def _safe(name: str) -> str:
    """A batch or data-set name made safe as one path segment."""
    return _UNSAFE.sub("_", name).strip("._") or "batch"


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
