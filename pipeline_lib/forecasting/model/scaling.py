"""Per-series standard scaling, fitted on the training window only.

Each series gets its own mean and scale per column (``y`` and the past covariates), computed
with sklearn's ``StandardScaler`` over rows dated on or before the training cut-off. NaN values
are ignored in the fit; a column with zero variance gets scale 1, a column with no value at all
gets mean 0 and scale 1. The fitted numbers are stored as plain floats (JSON-able, never pickled)
so a checkpoint can carry them in its metadata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from pipeline_lib import schema


@dataclass(frozen=True)
class SeriesScalers:
    """Fitted scalers: ``mean[series][i]`` and ``scale[series][i]`` belong to ``columns[i]``."""

    columns: list[str]
    mean: dict[str, list[float]]
    scale: dict[str, list[float]]

    @property
    def series_ids(self) -> list[str]:
        return list(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record of the scalers."""
        return {"columns": list(self.columns), "mean": dict(self.mean), "scale": dict(self.scale)}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> SeriesScalers:
        return cls(
            columns=list(record["columns"]),
            mean={k: [float(x) for x in v] for k, v in record["mean"].items()},
            scale={k: [float(x) for x in v] for k, v in record["scale"].items()},
        )

    def _params(self, series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row mean and scale matrices [rows, n_columns] for an array of series ids."""
        ids = self.series_ids
        unknown = sorted(set(series.tolist()) - set(ids))
        if unknown:
            raise KeyError(f"no scaler fitted for series {unknown}")
        pos = pd.Index(ids).get_indexer(series)
        means = np.array([self.mean[s] for s in ids], dtype=np.float64)
        scales = np.array([self.scale[s] for s in ids], dtype=np.float64)
        return means[pos], scales[pos]

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        """Scaled ``columns`` of ``features`` as float32 [rows, n_columns]; NaN becomes 0."""
        mean, scale = self._params(features[schema.SERIES_ID].to_numpy())
        values = features[self.columns].to_numpy(dtype=np.float64)
        scaled = (values - mean) / scale
        return np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def inverse_column(
        self, series: np.ndarray, values: np.ndarray, column: str = schema.Y
    ) -> np.ndarray:
        """Undo the scaling of one column; ``values`` [rows, ...] with one series id per row."""
        i = self.columns.index(column)
        mean, scale = self._params(np.asarray(series))
        shape = (-1,) + (1,) * (np.ndim(values) - 1)
        return np.asarray(values, np.float64) * scale[:, i].reshape(shape) + mean[:, i].reshape(
            shape
        )


def fit_scalers(
    features: pd.DataFrame,
    train_end: dt.date,
    columns: list[str],
    train_start: dt.date | None = None,
) -> SeriesScalers:
    """Fit one ``StandardScaler`` per series on rows dated in ``[train_start, train_end]``.

    Rows after ``train_end`` never influence the result (no leakage from the future).
    """
    dates = features[schema.DATE]
    keep = dates <= pd.Timestamp(train_end)
    if train_start is not None:
        keep &= dates >= pd.Timestamp(train_start)
    window = features.loc[keep]
    means: dict[str, list[float]] = {}
    scales: dict[str, list[float]] = {}
    for series_id, group in window.groupby(schema.SERIES_ID, sort=True):
        values = group[columns].to_numpy(dtype=np.float64)
        mean = np.zeros(len(columns))
        scale = np.ones(len(columns))
        observed = np.isfinite(values).any(axis=0)
        if observed.any():
            fitted = StandardScaler().fit(values[:, observed])
            mean[observed] = fitted.mean_
            scale[observed] = fitted.scale_  # sklearn already maps zero variance to scale 1
        means[str(series_id)] = [float(x) for x in mean]
        scales[str(series_id)] = [float(x) for x in scale]
    if not means:
        raise ValueError(f"no feature rows on or before {train_end} to fit the scalers on")
    return SeriesScalers(columns=list(columns), mean=means, scale=scales)
