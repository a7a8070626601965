"""Filesystem helpers over fsspec: resolve URLs, join paths, write files atomically.

Every path here may be a local path or any fsspec URL (``file://``, ``s3://``, ``memory://``...).
"""

from __future__ import annotations

import os
import posixpath
import uuid

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline_lib.errors import storage_errors

TEMP_PREFIX = "."  # pyarrow dataset readers skip names starting with "." or "_"


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem holding ``url`` and the path of ``url`` inside it."""
    fs, path = fsspec.core.url_to_fs(str(url))
    return fs, path


def join(url: str, *parts: str) -> str:
    """Join path segments onto a local path or URL, with ``/`` for URLs."""
    url = str(url)
    if "://" in url:
        return posixpath.join(url.rstrip("/"), *[p.strip("/") for p in parts])
    return os.path.join(url, *parts)


def dated_files(
    fs: fsspec.AbstractFileSystem, folder: str, suffix: str, low: str, high: str
) -> list[str]:
    """The files ``<date><suffix>`` in ``folder`` dated from ``low`` to before ``high`` (ISO
    dates; ``""``: no lower bound), oldest first; none when the folder does not exist."""
    if not fs.exists(folder):
        return []
    names = sorted(fs.glob(f"{folder}/*{suffix}"))
    return [p for p in names if low <= p.rsplit("/", 1)[-1].removesuffix(suffix) < high]


def _move(fs: fsspec.AbstractFileSystem, src: str, dst: str) -> None:
    """Move ``src`` onto ``dst``, replacing it; an atomic rename on local disks."""
    if isinstance(fs, LocalFileSystem):
        os.replace(src, dst)
    else:
        fs.mv(src, dst)


def atomic_write_bytes(url: str, data: bytes) -> str:
    """Write ``data`` to ``url`` so that readers see either the old file or the whole new one.

    The bytes go to a hidden temporary name in the same folder, which is then renamed onto
    the final name. If anything fails, the temporary file is removed and the old file, if
    any, is left untouched. Returns the path written (inside its filesystem). A full or
    read-only disk raises a StorageError naming ``url`` (:func:`storage_errors`).
    """
    fs, path = filesystem(url)
    parent = posixpath.dirname(path)
    base = posixpath.basename(path)
    tmp = f"{parent}/{TEMP_PREFIX}{base}.{uuid.uuid4().hex[:12]}.tmp" if parent else f".{base}.tmp"
    with storage_errors("writing", str(url)):
        if parent:
            fs.makedirs(parent, exist_ok=True)
        try:
            with fs.open(tmp, "wb") as f:
                f.write(data)
            _move(fs, tmp, path)
        except BaseException:
            try:
                if fs.exists(tmp):
                    fs.rm(tmp)
            except OSError:  # e.g. the disk went read-only: the original error matters
                pass
            raise
    return path
