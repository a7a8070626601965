"""File drops: a CSV or Parquet file, or a folder of them, on any fsspec URL."""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Mapping
from typing import Any

from pipeline_lib.sources.base import CSV, PARQUET, Payload, SourceError, utc_now
from pipeline_lib.store.fs import filesystem
from pipeline_lib.store.manifest import FileStamp

_MEDIA_TYPES = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET}


def _media_type(path: str) -> str | None:
    return _MEDIA_TYPES.get(posixpath.splitext(path)[1].lower())


def _modified(info: Mapping[str, Any]) -> str | None:
    """The modification time fsspec reports, whatever the storage calls it."""
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        if info.get(name) is not None:
            return str(info[name])
    return None


class FileDropSource:
    """Each ``.csv``/``.parquet`` file at ``path`` becomes one payload, bytes unchanged.

    ``path`` is a file or a folder (files taken in name order, hidden ones skipped).
    ``fetch`` returns whole files: the caller filters the parsed rows to ``[start, end]``
    with :func:`pipeline_lib.sources.parse.filter_dates`. ``columns`` maps the files'
    column names to ours; it is recorded in each payload's request so parsing can replay it.
    A file larger than ``max_bytes`` is refused with an error naming it.
    """

    name = "file"

    def __init__(
        self,
        dataset: str,
        key: str,
        path: str,
        columns: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.key = key
        self.path = str(path)
        self.columns = dict(columns) if columns else None
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"FileDropSource({self.dataset!r}, {self.key!r}, {self.path!r})"

    def _files(self) -> list[str]:
        fs, root = filesystem(self.path)
        if not fs.exists(root):
            raise SourceError(
                f"{self.dataset} file drop for '{self.key}': path not found: {self.path}"
            )
        if not fs.isdir(root):
            if _media_type(root) is None:
                raise SourceError(
                    f"{self.dataset} file drop for '{self.key}': {self.path} is not a .csv "
                    "or .parquet file"
                )
            return [root]
        found = [
            p
            for p in fs.ls(root, detail=False)
            if _media_type(p)
            and not posixpath.basename(p).startswith((".", "_"))
            and not fs.isdir(p)
        ]
        return sorted(found, key=posixpath.basename)

    def _read(self, fs: Any, path: str, size: int | None) -> bytes:
        if self.max_bytes is not None and size is not None and size > self.max_bytes:
            raise SourceError(
                f"{self.dataset} file drop for '{self.key}': {path} is {size:,} bytes, over "
                f"the limit of {self.max_bytes:,} (ingest.max_file_bytes); split the file or "
                "raise the limit"
            )
        with fs.open(path, "rb") as f:
            return f.read()

    def fetch(
        self, start: dt.date, end: dt.date, taken: Mapping[str, FileStamp] | None = None
    ) -> list[Payload]:
        """One payload per file (an empty folder gives an empty list).

        ``taken`` (file URL -> stamp, see :mod:`pipeline_lib.store.manifest`): files already
        taken whole are skipped, by size and modification time without reading them, or by
        content hash when only their time changed. A changed file is offered again.
        """
        fs, _ = filesystem(self.path)
        taken = taken or {}
        payloads = []
        for path in self._files():
            info = fs.info(path)
            size, modified = info.get("size"), _modified(info)
            stamp = taken.get(path)
            done = stamp is not None and stamp.done
            if done and stamp.size == size and stamp.modified == modified:
                continue
            content = self._read(fs, path, size)
            request: dict[str, object] = {
                "path": self.path,
                "file": path,
                "size": len(content),
                "modified": modified,
                "start": start.isoformat(),
                "end": end.isoformat(),
            }
            if self.columns:
                request["columns"] = self.columns
            payload = Payload(
                source=self.name,
                dataset=self.dataset,
                key=self.key,
                request=request,
                fetched_at=utc_now(),
                content=content,
                media_type=_media_type(path) or CSV,
                name=posixpath.basename(path),
            )
            if done and stamp.sha256 == payload.sha256:
                continue  # touched, not changed
            payloads.append(payload)
        return payloads
