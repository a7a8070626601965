"""Raw landing: every fetched payload (a :class:`Payload`, what every source returns) stored
unchanged, once, with a JSON sidecar.

Layout: ``raw/dataset=<d>/source=<s>/key=<k>/<fetched_at UTC>-<sha8>.<ext>`` plus
``<same>.meta.json``. Append-only: nothing is overwritten or deleted.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join

CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
JSON = "application/json"
_EXTENSIONS = {CSV: "csv", PARQUET: "parquet"}


@dataclass(frozen=True)
class Payload:
    """Bytes exactly as fetched from a source, with what was asked and when.

    source: the source kind ("sample", "file"); dataset: "prices" or "weather";
    key: the series id or location name; request: what was asked (JSON-able: dates, path,
    column mapping); fetched_at: tz-aware UTC time of the fetch; content: the bytes,
    unchanged; media_type: "text/csv" or "application/vnd.apache.parquet";
    name: the original file name.
    """

    source: str
    dataset: str
    key: str
    request: dict[str, Any]
    fetched_at: dt.datetime
    content: bytes = field(repr=False)
    media_type: str
    name: str

    def __post_init__(self) -> None:
        if self.fetched_at.tzinfo is None:
            raise ValueError("Payload.fetched_at must be time-zone aware (UTC)")

    @functools.cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of ``content``, computed once per payload."""
        return hashlib.sha256(self.content).hexdigest()

    def describe(self) -> str:
        """A short human name, e.g. ``prices file 'x.csv' (series SP500, source file)``."""
        what = "series" if self.dataset == "prices" else "location"
        return f"{self.dataset} file '{self.name}' ({what} {self.key}, source {self.source})"


def _extension(payload: Payload) -> str:
    if payload.media_type in _EXTENSIONS:
        return _EXTENSIONS[payload.media_type]
    suffix = posixpath.splitext(payload.name)[1].lstrip(".").lower()
    return suffix or "bin"


def _meta(payload: Payload, sha: str) -> bytes:
    record = {
        "source": payload.source,
        "dataset": payload.dataset,
        "key": payload.key,
        "request": payload.request,
        "fetched_at": payload.fetched_at.astimezone(dt.UTC).isoformat(),
        "media_type": payload.media_type,
        "name": payload.name,
        "sha256": sha,
        "size": len(payload.content),
    }
    return json.dumps(record, indent=2, sort_keys=True, default=str).encode("utf-8")


def _same_content(url: str, sha: str) -> bool:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest() == sha


def land_raw(data_dir: str, payload: Payload) -> str:
    """Store ``payload.content`` byte for byte under ``data_dir/raw``; returns its URL.

    Landing the same payload again (same fetch time and content) returns the existing file;
    a different payload that would get the same name is given a ``-1``, ``-2``... suffix.
    """
    sha = payload.sha256
    folder = join(
        data_dir,
        "raw",
        f"dataset={quote(payload.dataset, safe='')}",
        f"source={quote(payload.source, safe='')}",
        f"key={quote(payload.key, safe='')}",
    )
    stamp = payload.fetched_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    stem, ext = f"{stamp}-{sha[:8]}", _extension(payload)
    fs, _ = filesystem(folder)
    n = 0
    while True:
        url = join(folder, f"{stem}{'' if n == 0 else f'-{n}'}.{ext}")
        if not fs.exists(filesystem(url)[1]):
            break
        if _same_content(url, sha):
            if not fs.exists(filesystem(url + ".meta.json")[1]):
                atomic_write_bytes(url + ".meta.json", _meta(payload, sha))
            return url
        n += 1
    atomic_write_bytes(url, payload.content)
    atomic_write_bytes(url + ".meta.json", _meta(payload, sha))
    return url
