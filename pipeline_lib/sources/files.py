"""File drops: a CSV or Parquet file, or a folder of them, on any fsspec URL."""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Mapping

from pipeline_lib.sources.base import CSV, PARQUET, Payload, SourceError, utc_now
from pipeline_lib.store.fs import filesystem

_MEDIA_TYPES = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET}


def _media_type(path: str) -> str | None:
    return _MEDIA_TYPES.get(posixpath.splitext(path)[1].lower())


class FileDropSource:
    """Each ``.csv``/``.parquet`` file at ``path`` becomes one payload, bytes unchanged.

    ``path`` is a file or a folder (files taken in name order, hidden ones skipped).
    ``fetch`` returns whole files: the caller filters the parsed rows to ``[start, end]``
    with :func:`pipeline_lib.sources.parse.filter_dates`. ``columns`` maps the files'
    column names to ours; it is recorded in each payload's request so parsing can replay it.
    """

    name = "file"

    def __init__(
        self, dataset: str, key: str, path: str, columns: Mapping[str, str] | None = None
    ) -> None:
        self.dataset = dataset
        self.key = key
        self.path = str(path)
        self.columns = dict(columns) if columns else None

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

    def fetch(self, start: dt.date, end: dt.date) -> list[Payload]:
        """One payload per file (an empty folder gives an empty list)."""
        fs, _ = filesystem(self.path)
        payloads = []
        for path in self._files():
            with fs.open(path, "rb") as f:
                content = f.read()
            request: dict[str, object] = {
                "path": self.path,
                "file": path,
                "start": start.isoformat(),
                "end": end.isoformat(),
            }
            if self.columns:
                request["columns"] = self.columns
            payloads.append(
                Payload(
                    source=self.name,
                    dataset=self.dataset,
                    key=self.key,
                    request=request,
                    fetched_at=utc_now(),
                    content=content,
                    media_type=_media_type(path) or CSV,
                    name=posixpath.basename(path),
                )
            )
        return payloads
