"""Batch forecasting from a trained model, using only rows dated on or before the forecast date."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.model.calendar import calendar_features, future_dates
from pipeline_lib.model.trained import TrainedModel

FORECAST_COLUMNS = [
    schema.SERIES_ID,
    "forecast_date",
    "target_date",
    "horizon",
    "yhat",
    "yhat_lower",
    "yhat_upper",
]


def predict(
    trained: TrainedModel, features: pd.DataFrame, as_of: dt.date, frequencies: dict[str, str]
) -> pd.DataFrame:
    """Forecast the next ``horizon`` dates after ``as_of`` for every series of the model with at
    least ``lookback`` rows on or before ``as_of``.

    Target dates are the next business days (pandas ``BDay``) for frequency ``"B"`` and the next
    calendar days for ``"D"`` (a series missing from ``frequencies`` counts as ``"B"``); their
    calendar features are computed here. Values are prices (inverse-scaled). Rows after
    ``as_of`` are filtered out first, so they can never influence the output.
    """
    cutoff = pd.Timestamp(as_of)
    rows = features.loc[
        (features[schema.DATE] <= cutoff)
        & features[schema.SERIES_ID].isin(trained.series_ids)
        & features[schema.Y].notna()
    ].sort_values([schema.SERIES_ID, schema.DATE])
    lookback, horizon = trained.lookback, trained.horizon
    tail = rows.groupby(schema.SERIES_ID, sort=True).tail(lookback)
    counts = tail.groupby(schema.SERIES_ID, sort=True).size()
    series = [str(s) for s in counts.index[counts == lookback]]
    if not series:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in FORECAST_COLUMNS})
    tail = tail.loc[tail[schema.SERIES_ID].isin(series)]

    scaled = trained.scalers.transform(tail)  # [S * lookback, n_scaled]
    calendar = np.nan_to_num(tail[trained.calendar_features].to_numpy(dtype=np.float32))
    past = np.concatenate([scaled, calendar], axis=1).reshape(len(series), lookback, -1)
    targets = [future_dates(as_of, horizon, frequencies.get(s, "B")) for s in series]
    future = np.stack(
        [calendar_features(d)[trained.calendar_features].to_numpy(np.float32) for d in targets]
    )  # [S, horizon, n_calendar]
    index = torch.tensor([trained.series_ids.index(s) for s in series], dtype=torch.int64)

    trained.module.eval()
    with torch.no_grad():
        out = trained.module(torch.from_numpy(past), torch.from_numpy(future), index)
    last_y = past[:, -1, 0].astype(np.float64)  # [S], scaled y at the origin
    levels = out.numpy().astype(np.float64) + last_y[:, None, None]  # [S, horizon, 3]
    ids = np.array(series, dtype=object)
    prices = [trained.scalers.inverse_column(ids, levels[..., k]) for k in range(3)]
    return pd.DataFrame(
        {
            schema.SERIES_ID: np.repeat(ids, horizon).astype(str),
            "forecast_date": pd.Series(cutoff, index=range(len(series) * horizon)).astype(
                "datetime64[ns]"
            ),
            "target_date": np.concatenate([d.to_numpy() for d in targets]).astype("datetime64[ns]"),
            "horizon": np.tile(np.arange(1, horizon + 1, dtype=np.int64), len(series)),
            "yhat": prices[1].reshape(-1),
            "yhat_lower": prices[0].reshape(-1),
            "yhat_upper": prices[2].reshape(-1),
        }
    )


def _dtype(column: str) -> str:
    if column in ("forecast_date", "target_date"):
        return "datetime64[ns]"
    return {"horizon": "int64", schema.SERIES_ID: "str"}.get(column, "float64")
