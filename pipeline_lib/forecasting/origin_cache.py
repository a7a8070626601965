"""Per-origin forecasts of a baseline refitted at every origin, kept from one night to the next.

The linear baseline refits its ridges at each backtest origin from the rows up to it, and each
night's backtest asks for the last ``backtest.last_n`` origins of every series, all but the
newest of which the previous night asked for too. A forecast from origin ``o`` depends only on
the model's settings and rows ``0..o`` (point in time), so it is kept under:

- the **settings digest** of the model (:func:`settings_digest`: its class, parameters, the
  covariate columns it reads, the horizon, the library versions), a folder per digest;
- the **row count** ``o + 1`` and a **fingerprint of rows 0..o** (:func:`prefix_fingerprints`:
  a running sum of per-row hashes of the date, ``y`` and every covariate the model reads).

A revised row changes the fingerprint of its own origin and of every later one, never of an
earlier one, so exactly the forecasts that read it are made again. A different history, a
different series or a changed setting can never be served from the cache (the fingerprint or
the digest differs); at worst a lost or unreadable file costs its recomputation.

Files: ``<folder>/<model>/<digest>/<series_id>.npz`` (``rows`` int64 [N], ``prints`` uint64
[N], ``values`` float64 [N, 3, H]: lower, point, upper), rewritten whole and atomically when a
night adds entries, keeping the entries within ``KEEP_ROWS_BEHIND`` rows of the night's first
origin (origins only move forward; a backfill a few months back still finds its own).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline_lib.store.fs import atomic_write_bytes, filesystem

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the file layout or a cached model's arithmetic changes
KEEP_ROWS_BEHIND = 260  # rows of entries kept before the night's first origin (a year, "B")
_MIX = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime, to combine the column hashes


def settings_digest(*parts: object) -> str:
    """A short digest of everything a cached forecast depends on besides its rows."""
    import sklearn

    text = "|".join(map(repr, (FORMAT, np.__version__, sklearn.__version__, *parts)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prefix_fingerprints(dates: np.ndarray, y: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """uint64 [T]: entry ``o`` fingerprints rows ``0..o`` (dates, ``y``, covariates [T, C]).

    Each row hashes its date and values (``pandas.util.hash_array``: NaN and -0.0 hash
    consistently); the fingerprint of a prefix is the wrapping sum of its rows' hashes, and the
    cache key adds the row count. Rows are distinct dates, so the sum identifies the set."""
    row = pd.util.hash_array(np.ascontiguousarray(dates).view(np.int64))
    columns = [np.asarray(y, np.float64), *np.asarray(covariates, np.float64).T]
    for column in columns:
        row = row * _MIX ^ pd.util.hash_array(np.ascontiguousarray(column))
    return np.cumsum(row, dtype=np.uint64)


class OriginStore:
    """One series' cached forecasts of one model configuration (see the module doc).

    ``url``: its file, or None (memory only: nothing read or written). ``prints``: the
    series' :func:`prefix_fingerprints` tonight."""

    def __init__(self, url: str | None, prints: np.ndarray) -> None:
        self.url, self.prints = url, prints
        self.entries: dict[tuple[int, int], np.ndarray] = _read(url) if url else {}
        self.added = 0

    def get(self, origin: int) -> np.ndarray | None:
        """The cached [3, H] forecast from row ``origin``, if its rows are unchanged."""
        return self.entries.get((origin + 1, int(self.prints[origin])))

    def put(self, origin: int, values: np.ndarray) -> None:
        self.entries[(origin + 1, int(self.prints[origin]))] = np.asarray(values, np.float64)
        self.added += 1

    def save(self, origins: Sequence[int] | np.ndarray) -> None:
        """Write the file when entries were added tonight, without the entries made on fewer
        than ``min(origins) + 1 - KEEP_ROWS_BEHIND`` rows. A failed write is logged only."""
        if not self.url or not self.added or not len(origins):
            return
        floor = int(min(origins)) + 1 - KEEP_ROWS_BEHIND
        keys = sorted(k for k in self.entries if k[0] >= floor)
        try:
            buffer = io.BytesIO()
            np.savez(
                buffer,
                rows=np.array([k[0] for k in keys], np.int64),
                prints=np.array([k[1] for k in keys], np.uint64),
                values=np.stack([self.entries[k] for k in keys]),
            )
            atomic_write_bytes(self.url, buffer.getvalue())
            self.added = 0
        except Exception as exc:  # the cache only saves time: a failed write is not a failed night
            log.warning("baseline forecast cache %s not written: %s", self.url, exc)


def _read(url: str) -> dict[tuple[int, int], np.ndarray]:
    """The entries of the file at ``url``; none when it is missing, torn or foreign."""
    try:
        fs, path = filesystem(url)
        if not fs.exists(path):
            return {}
        with np.load(io.BytesIO(fs.cat_file(path)), allow_pickle=False) as data:
            rows, prints, values = data["rows"], data["prints"], data["values"]
        if not (len(rows) == len(prints) == len(values)) or values.ndim != 3:
            raise ValueError(f"inconsistent arrays {rows.shape} {prints.shape} {values.shape}")
    except Exception as exc:  # a torn or foreign file: recompute, never fail the night
        log.warning("baseline forecast cache %s unreadable, recomputing: %s", url, exc)
        return {}
    return {(int(r), int(p)): v for r, p, v in zip(rows, prints, values, strict=True)}
