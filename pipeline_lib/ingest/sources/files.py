"""File drops: a CSV or Parquet file, or a folder of them, on any fsspec URL."""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import stat
from collections.abc import Mapping
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from pipeline_lib.ingest.sources.base import SourceError, utc_now
from pipeline_lib.store.fs import filesystem
from pipeline_lib.store.manifest import FileStamp
from pipeline_lib.store.raw import CSV, PARQUET, Payload

_MEDIA_TYPES = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET}
_RULE = "file drops take regular files inside the drop folder only"


def _media_type(path: str) -> str | None:
    return _MEDIA_TYPES.get(posixpath.splitext(path)[1].lower())


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "fifo (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


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
    with :func:`pipeline_lib.ingest.sources.parse.filter_dates`. ``columns`` maps the files'
    column names to ours and ``date_format`` (a strftime pattern, e.g. ``"%d/%m/%Y"``) declares
    how their dates are written (ISO 8601 when None); both are recorded in each payload's
    request so parsing can replay them. A file larger than ``max_bytes`` is refused with an
    error naming it. On a local disk a folder's entries must be regular files inside it: a
    symbolic link (which could point at ``/etc/passwd``) or a fifo is refused before reading.
    """

    name = "file"

    def __init__(
        self,
        dataset: str,
        key: str,
        path: str,
        columns: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        date_format: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.key = key
        self.path = str(path)
        self.columns = dict(columns) if columns else None
        self.max_bytes = max_bytes
        self.date_format = date_format or None

    def __repr__(self) -> str:
        return f"FileDropSource({self.dataset!r}, {self.key!r}, {self.path!r})"

    def _where(self) -> str:
        return f"{self.dataset} file drop for '{self.key}'"

    def _files(self) -> list[str]:
        fs, root = filesystem(self.path)
        local = isinstance(fs, LocalFileSystem)
        if not fs.exists(root):
            raise SourceError(f"{self._where()}: path not found: {self.path}")
        if not fs.isdir(root):
            if _media_type(root) is None:
                raise SourceError(f"{self._where()}: {self.path} is not a .csv or .parquet file")
            if local:  # the configured file may be a link (the user chose it), not a fifo
                self._check_regular(root, os.stat(root).st_mode)
            return [root]
        entries = [
            p
            for p in fs.ls(root, detail=False)
            if _media_type(p) and not posixpath.basename(p).startswith((".", "_"))
        ]
        if local:
            found = [p for p in entries if self._inside(root, p)]
        else:
            found = [p for p in entries if not fs.isdir(p)]
        return sorted(found, key=posixpath.basename)

    def _inside(self, root: str, path: str) -> bool:
        """Whether a local folder entry is a file to take (False: a folder, skipped).

        Refuses, before anything is read, a symbolic link (even to a file inside the folder:
        what it points at can change), an entry whose real path escapes the drop folder's
        real path (``root`` itself may be a link to a folder) and anything not a regular file.
        """
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise SourceError(
                f"{self._where()}: {_RULE}; {path} is a symbolic link to {os.readlink(path)} "
                "(refused unread; put the file itself in the folder)"
            )
        if stat.S_ISDIR(mode):
            return False
        real, folder = os.path.realpath(path), os.path.realpath(root)
        if os.path.commonpath([real, folder]) != folder:
            raise SourceError(
                f"{self._where()}: {_RULE}; {path} resolves to {real}, outside {folder} "
                "(refused unread)"
            )
        self._check_regular(path, mode)
        return True

    def _check_regular(self, path: str, mode: int) -> None:
        if not stat.S_ISREG(mode):  # reading a fifo or a device would block or never end
            raise SourceError(
                f"{self._where()}: {_RULE}; {path} is not a regular file but a "
                f"{_kind(mode)} (refused unread)"
            )

    def _read(self, fs: Any, path: str, size: int | None) -> bytes:
        if self.max_bytes is not None and size is not None and size > self.max_bytes:
            raise SourceError(
                f"{self._where()}: {path} is {size:,} bytes, over the limit of "
                f"{self.max_bytes:,} (ingest.max_file_bytes); split the file or raise the limit"
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
            done = stamp if stamp is not None and stamp.done else None  # taken whole before
            if done is not None and done.size == size and done.modified == modified:
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
            if self.date_format:
                request["date_format"] = self.date_format
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
            if done is not None and done.sha256 == payload.sha256:
                continue  # touched, not changed
            payloads.append(payload)
        return payloads
