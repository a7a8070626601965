"""Files of the reports folder (``<data dir>/reports``: run plots, run records, validation
reports, Data Docs, logs), read through fsspec so an object-storage data folder works too.

A requested path is a ``/``-separated path relative to the folder. It may not leave it: an
absolute path, a ``.`` or ``..`` segment, an empty segment or a backslash is a 400; a hidden
name (the temporary files of atomic writes) is not served (404). On a local disk the file's
real path must lie inside the folder's, so a symbolic link cannot lead out of it either.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
from dataclasses import dataclass

from fsspec.implementations.local import LocalFileSystem

from pipeline_lib.api.errors import ApiError, shown
from pipeline_lib.store.fs import filesystem

MAX_REPORT_BYTES = 64 * 1024 * 1024  # larger files are refused (413): read whole into memory
# Types that mimetypes may not know, or knows differently on other systems.
MEDIA_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".html": "text/html",
    ".json": "application/json",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".log": "text/plain",
    ".txt": "text/plain",
}
PARAMETER = "path"


@dataclass(frozen=True)
class ReportFile:
    """A report file's bytes and media type."""

    data: bytes
    media_type: str


def media_type(name: str) -> str:
    """The content type of a file by its extension (``application/octet-stream`` if unknown)."""
    ext = posixpath.splitext(name)[1].lower()
    return MEDIA_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def safe_parts(path: str) -> list[str]:
    """The segments of ``path``; ApiError 400 when it would leave the folder, 404 when it
    names nothing servable (empty, hidden)."""
    refused = (
        path.startswith(("/", "\\"))
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    )
    if path and refused:
        raise ApiError(
            400,
            f"path parameter {PARAMETER!r}: {shown(path)} must be a relative path inside the "
            "reports folder (no leading '/', no '.' or '..' or empty segments, no '\\')",
            [PARAMETER],
        )
    parts = path.split("/")
    if not path or any(part.startswith(".") for part in parts):
        raise ApiError(404, f"no report file {shown(path)}", [PARAMETER])
    return parts


def _inside(root: str, target: str) -> bool:
    """Whether ``target``'s real path lies inside ``root``'s (local disks: links resolved)."""
    real_root = os.path.realpath(root)
    return os.path.realpath(target).startswith(real_root.rstrip(os.sep) + os.sep)


def read_report(root: str, path: str) -> ReportFile:
    """The file at ``path`` under the reports folder ``root`` (a local path or fsspec URL).
    ApiError: 400 for a path that leaves the folder, 404 for a missing file (or a folder),
    413 for a file over ``MAX_REPORT_BYTES``, 503 when the folder cannot be read."""
    parts = safe_parts(path)
    fs, root_path = filesystem(root)
    target = posixpath.join(root_path, *parts)
    missing = ApiError(404, f"no report file {shown(path)}", [PARAMETER])
    if isinstance(fs, LocalFileSystem) and not _inside(root_path, target):
        raise missing
    try:
        info = fs.info(target)
        if info.get("type") != "file":
            raise missing
        if (info.get("size") or 0) > MAX_REPORT_BYTES:
            raise ApiError(413, f"report file {shown(path)} is over {MAX_REPORT_BYTES} bytes")
        with fs.open(target, "rb") as f:
            data = f.read(MAX_REPORT_BYTES + 1)
    except FileNotFoundError as exc:
        raise missing from exc
    except OSError as exc:
        raise ApiError(503, f"reports folder cannot be read: {exc.strerror or exc}") from exc
    return ReportFile(data, media_type(parts[-1]))
