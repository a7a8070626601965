"""When the statistical baselines fit, and the fits kept from one night to the next.

A series' fit point moves in steps of ``every`` rows, staggered per series (:func:`fit_point`),
and one fit point in ``search_every`` searches the model's form (:func:`search_point`); see
:mod:`pipeline_lib.forecasting.statistical`. Each fit is kept in the models folder
(``statistical/<model>/<series>/<rows>-<key>.pkl``) as a :class:`Fitted`, keyed by a hash of
what it depends on (:func:`fit_digest`); a file that is torn, foreign or made from other rows
is refitted, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fsspec.core import url_to_fs

from pipeline_lib.store.fs import atomic_write_bytes

log = logging.getLogger(__name__)


def fit_point(rows: int, every: int, series_id: str) -> int:
    """The fit point of a series whose fit may read ``rows`` rows: the last row count on or
    before ``rows`` that is its own step of ``every`` rows, offset by a stable hash of its id,
    so a night refits the series whose step it is (about one in ``every``), not all of them
    on the same night."""
    offset = zlib.crc32(series_id.encode()) % every
    return rows - (rows - offset) % every


def search_point(n_fit: int, every: int, search_every: int, series_id: str) -> int:
    """The fit point whose model search gives its form to the fit at ``n_fit`` (a fit point of
    ``series_id``, see :func:`fit_point`): the last one on or before it whose row count is the
    series' own step of ``every * search_every`` rows (offset by the same hash as its fit
    points, taken modulo the longer step, so the search points are fit points and the series
    search on nights spread over the whole cycle), so one fit point in ``search_every``
    searches and the others re-estimate the parameters of its form. ``search_every`` 1: every
    fit point searches (returns ``n_fit``)."""
    offset = zlib.crc32(series_id.encode()) % (every * search_every)
    return n_fit - ((n_fit - offset) // every % search_every) * every


@dataclass
class Fitted:
    """A fitted model, whether it works on logs, and its forecasts by (origin, horizon, hash
    of the rows after the fit point); ``url``: its cache file."""

    digest: str
    model: Any
    use_log: bool
    forecasts: dict[tuple[int, int, str], np.ndarray] = field(default_factory=dict)
    url: str | None = None


KEEP_FITS = 3  # cached fits kept per model and series below the newest: about a quarter


def prune_fits(url: str, below: int) -> None:
    """Remove the cached fits of the folder of ``url`` made on fewer than ``below`` rows."""
    try:
        fs, path = url_to_fs(url)
        folder = path.rsplit("/", 1)[0]
        for name in fs.ls(folder, detail=False):
            rows = name.rsplit("/", 1)[-1].split("-", 1)[0]
            if rows.isdigit() and int(rows) < below:
                fs.rm(name)
    except Exception as exc:  # clean-up only
        log.warning("statistical model cache %s not pruned: %s", url, exc)


def fit_digest(
    name: str,
    season: int,
    use_log: bool,
    quantiles: Any,
    y: np.ndarray,
    searched: str | None = None,
) -> str:
    """What a fit depends on: the model, the season, the scale, the quantiles, the key of the
    search point's fit whose form it takes (``searched``; None: a search, the form its own)
    and the rows (not the target dates: ``"B"`` and an exchange calendar share a fit)."""
    import statsforecast

    head = f"{name}|{statsforecast.__version__}|{season}|{use_log}|{tuple(quantiles)}|"
    head += f"{searched}|" if searched is not None else ""
    return hashlib.sha256(head.encode() + np.ascontiguousarray(y).tobytes()).hexdigest()


def load_fit(url: str, digest: str) -> Fitted | None:
    """The cached fit at ``url``, if it is there, readable and made from the same rows."""
    try:
        fs, path = url_to_fs(url)
        if not fs.exists(path):
            return None
        fitted = _Unpickler(io.BytesIO(fs.cat_file(path))).load()
    except Exception as exc:  # a torn or foreign file: refit, never fail the night
        log.warning("statistical model cache %s unreadable, refitting: %s", url, exc)
        return None
    return fitted if isinstance(fitted, Fitted) and fitted.digest == digest else None


def save_fit(fitted: Fitted) -> None:
    assert fitted.url is not None
    url, fitted.url = fitted.url, None
    try:
        atomic_write_bytes(url, pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:  # the cache only saves time: a failed write is not a failed night
        log.warning("statistical model cache %s not written: %s", url, exc)
    finally:
        fitted.url = url


# where earlier releases pickled a fit's class: read as a Fitted (not a refit of every series)
_FORMER = {
    ("pipeline_lib.statistical", "_Fitted"),
    ("pipeline_lib.forecasting.statistical", "_Fitted"),
}


class _Unpickler(pickle.Unpickler):  # the pipeline's own cache (see the module doc)
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _FORMER:
            return Fitted
        return super().find_class(module, name)
