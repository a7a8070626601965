"""Browser URLs of the files in the reports folder, from the ``[serve]`` settings.

Pure string work: no FastAPI, no filesystem or network access, so a nightly run can import it
to put links into its artifacts. ``report_link(settings, save_plot(...))`` is where a browser
opening the Prefect UI finds tonight's plot: under ``serve.reports_url``, by default the read
API's own ``/reports/...`` route (``{public_url}/reports``), or an object-storage bucket's
https URL when the data folder lives there.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING
from urllib.parse import quote

from pipeline_lib import paths

if TYPE_CHECKING:
    from pipeline_lib.config import Settings

# Kept as they are in a link segment; everything else is percent-encoded ("/" included).
_SAFE = "=@:,"


def _normal(location: str) -> tuple[str, str]:
    """``(scheme, path)`` of a local path or fsspec URL, with ``.``, ``..`` and doubled or
    trailing slashes resolved; ``file://`` URLs and plain paths have the scheme ``""``. A
    relative local path is refused: it would depend on the working folder."""
    scheme, sep, rest = location.partition("://")
    if not sep:
        scheme, rest = "", location
    scheme = scheme.lower()
    if scheme == "file":
        scheme = ""
    if scheme == "" and not rest.startswith("/"):
        raise ValueError(f"{location!r} is not an absolute path or URL")
    path = posixpath.normpath(rest)
    if scheme == "":
        path = "/" + path.lstrip("/")  # normpath keeps a leading "//"
    return scheme, path


def report_path(settings: Settings, path: str) -> str:
    """``path`` (a local path or URL of a file under the reports folder, as
    ``pipeline_lib.publishing.plot.save_plot`` returns it) relative to that folder,
    ``/``-separated. ValueError naming ``path`` when it is not under the reports folder (or is the
    folder)."""
    root = paths.reports_dir(settings.data_dir)
    try:
        root_scheme, root_path = _normal(root)
        scheme, normal = _normal(str(path))
    except ValueError as exc:
        raise ValueError(f"report path {path!r}: {exc}; expected a file under {root}") from exc
    prefix = root_path.rstrip("/") + "/"
    if scheme != root_scheme or not normal.startswith(prefix) or normal == prefix:
        raise ValueError(f"report path {path!r} is not a file under the reports folder {root}")
    return normal[len(prefix) :]


def report_link(settings: Settings, path: str) -> str:
    """The URL a browser opens ``path`` at: its place under the reports folder joined onto
    ``serve.reports_url`` (default ``{public_url}/reports``), each segment percent-encoded.

    ``path``: a file under ``paths.reports_dir(settings.data_dir)``, as a local path, a
    ``file://`` URL, or a URL of the data folder's filesystem (``s3://...``). ValueError
    naming ``path`` when it is not under that folder (``..`` that leaves it included)."""
    relative = report_path(settings, path)
    segments = [quote(part, safe=_SAFE) for part in relative.split("/")]
    return f"{settings.serve.reports_base}/{'/'.join(segments)}"


def series_link(settings: Settings, series_id: str) -> str:
    """The URL of a series' page (``/series/{id}``) under ``serve.public_url``."""
    return f"{settings.serve.public_base}/series/{quote(series_id, safe='')}"
