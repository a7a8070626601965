"""Batch forecasting from a trained model, using only rows dated on or before the forecast date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from pipeline_lib import schema
from pipeline_lib.evaluation.windows import origin_windows
from pipeline_lib.features.calendar import calendar_features, dates_ahead
from pipeline_lib.forecasting.model.threads import use_threads
from pipeline_lib.forecasting.model.trained import TrainedModel
from pipeline_lib.forecasting.model.window_set import future_covariate_inputs, local_scale
from pipeline_lib.forecasting.model.windows import require_columns, series_arrays


def predict(
    trained: TrainedModel, features: pd.DataFrame, as_of: dt.date, frequencies: dict[str, str]
) -> pd.DataFrame:
    """Forecast the next ``horizon`` dates after ``as_of`` for every series of the model with at
    least ``lookback`` rows on or before ``as_of``.

    Target dates are the next dates of the series' frequency (``"B"``: pandas ``BDay``; ``"D"``:
    calendar days; an exchange calendar code such as ``"XNYS"``: its sessions; a series missing
    from ``frequencies`` counts as ``"B"``; see :mod:`pipeline_lib.features.calendar`); their
    calendar features are computed here. Values are prices (inverse-scaled). Rows after
    ``as_of`` are filtered out first, so they can never influence the output.
    """
    rows = schema.dated_up_to(features, as_of)
    dates = np.array([np.datetime64(pd.Timestamp(as_of).as_unit("ns"))])
    return predict_at(trained, rows, dict.fromkeys(trained.series_ids, dates), frequencies)


# windows per forward pass of a backtest: the same forecasts as one pass, to float32 rounding
# (bit for bit where the batches are large; a small last batch may take another kernel)
BATCH = 4096


def predict_at(
    trained: TrainedModel,
    features: pd.DataFrame,
    forecast_dates: Mapping[str, np.ndarray],
    frequencies: Mapping[str, str],
) -> pd.DataFrame:
    """Forecasts of many forecast dates per series in one batched forward pass (a backtest).

    ``forecast_dates`` maps a series id to its forecast dates (datetime64). The forecast of
    date ``d`` reads the last ``lookback`` rows dated on or before ``d`` (views over one scaled
    array per series, no per-window copies) and forecasts the ``horizon`` dates after ``d``, so
    a forecast never sees a row after its date. Dates with fewer than ``lookback`` rows before
    them, and series the model does not know, are skipped. Same columns as :func:`predict`.

    The future covariates' values for the target dates are the lead columns of that last row
    (its origin), masked where unknown, as in training (:func:`future_covariate_inputs`).
    """
    lookback, horizon, feature_set = trained.lookback, trained.horizon, trained.feature_set
    require_columns(features, feature_set)
    use_threads()  # one thread off the main thread (a backfill's worker; model.threads)
    wanted = [s for s in trained.series_ids if len(forecast_dates.get(s, ())) > 0]
    rows = readable_rows(features, {s: forecast_dates[s] for s in wanted}, lookback)
    arrays = series_arrays(
        rows,
        trained.scalers,
        trained.series_ids,
        trained.calendar_features,
        feature_set.lead_columns,
    )
    past, future, index, ids, origins, targets = [], [], [], [], [], []
    for a in arrays:
        sid = trained.series_ids[a.series_index]
        dates = np.asarray(forecast_dates[sid]).astype("datetime64[ns]")
        ends = np.searchsorted(a.dates, dates, side="right") - 1  # last row on or before d
        ok = ends >= lookback - 1
        if not ok.any():
            continue
        window, _ = origin_windows(a.values, ends[ok], lookback, 0)  # [N, lookback, F] view
        freq = frequencies.get(sid, "B")
        days = pd.DatetimeIndex(dates[ok]).normalize().to_numpy()
        ahead = dates_ahead(days, horizon, freq)  # [N, horizon] target dates
        past.append(window)
        columns = trained.calendar_features
        encoded = calendar_features(ahead.reshape(-1))[columns].to_numpy(np.float32)
        calendar = encoded.reshape(len(ahead), horizon, len(columns))  # [N, horizon, F_cal]
        leads = None if a.leads is None else a.leads[torch.from_numpy(ends[ok])]  # origin rows
        covariates = future_covariate_inputs(leads, feature_set, horizon, len(ahead))
        future.append(np.concatenate([calendar, covariates.numpy()], axis=2))  # [N, H, F_future]
        index.append(torch.full((len(ahead),), a.series_index, dtype=torch.int64))
        ids += [sid] * len(ahead)
        origins.append(dates[ok])
        targets.append(ahead.reshape(-1))
    if not ids:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in schema.FORECAST_COLUMNS})
    past_t, future_t, index_t = (
        torch.cat(past),
        torch.from_numpy(np.concatenate(future)),
        torch.cat(index),
    )
    if trained.asinh_rows:  # each window's y on its own asinh scale, as in training
        past_t[:, :, 0], centre_t, spread_t = local_scale(past_t[:, :, 0], trained.asinh_rows)
        centre, spread = centre_t.numpy().astype(np.float64), spread_t.numpy().astype(np.float64)
    trained.module.eval()
    with torch.no_grad():  # in batches: the LSTM's activations for every window at once were
        out = torch.cat(  # ~1 GB at 1,000 series x 40 origins
            [
                trained.module(
                    past_t[i : i + BATCH], future_t[i : i + BATCH], index_t[i : i + BATCH]
                )
                for i in range(0, len(past_t), BATCH)
            ]
        )
    last_y = past_t[:, -1, 0].numpy().astype(np.float64)  # scaled y at each origin
    levels = out.numpy().astype(np.float64) + last_y[:, None, None]  # [N, horizon, 3]
    if trained.asinh_rows:  # back from each window's asinh scale (monotone: order kept)
        levels = np.sinh(levels) * spread[:, :, None] + centre[:, :, None]
    series = np.array(ids, dtype=object)
    # published: the outer quantiles and the middle one (the point forecast)
    n_q = levels.shape[2]
    band = (0, n_q // 2, n_q - 1)
    prices = [trained.scalers.inverse_column(series, levels[..., k]) for k in band]
    return pd.DataFrame(
        {
            schema.SERIES_ID: np.repeat(series, horizon).astype(str),
            "forecast_date": np.repeat(np.concatenate(origins), horizon),
            "target_date": np.concatenate(targets).astype("datetime64[ns]"),
            "horizon": np.tile(np.arange(1, horizon + 1, dtype=np.int64), len(series)),
            "yhat": prices[1].reshape(-1),
            "yhat_lower": prices[0].reshape(-1),
            "yhat_upper": prices[2].reshape(-1),
        }
    )


def readable_rows(
    features: pd.DataFrame, forecast_dates: Mapping[str, np.ndarray], lookback: int
) -> pd.DataFrame:
    """The rows forecasts from ``forecast_dates`` (datetime64 by series id) can read: per
    series, from the ``lookback``-th row with a target on or before its earliest forecast date
    to its latest forecast date (a copy of those rows only, not of the whole history)."""
    ids = features[schema.SERIES_ID].astype(str).to_numpy()
    dates = features[schema.DATE].to_numpy("datetime64[ns]")
    ends = {s: np.asarray(d).astype("datetime64[ns]") for s, d in forecast_dates.items()}
    first = pd.Series({s: d.min() for s, d in ends.items()}, dtype="datetime64[ns]")
    last = pd.Series({s: d.max() for s, d in ends.items()}, dtype="datetime64[ns]")
    own_first = first.reindex(ids).to_numpy("datetime64[ns]")  # NaT: a series not asked for
    known = ~np.isnat(own_first)
    before = known & features[schema.Y].notna().to_numpy() & (dates <= own_first)
    tail = pd.DataFrame({"s": ids[before], "d": dates[before]}).sort_values(["s", "d"])
    start = tail.groupby("s").tail(lookback).groupby("s")["d"].min()
    begin = start.reindex(ids).to_numpy("datetime64[ns]")  # NaT: no row before, read all
    keep = known & (dates <= last.reindex(ids).to_numpy("datetime64[ns]"))
    keep &= np.isnat(begin) | (dates >= begin)
    return features.loc[keep]


def _dtype(column: str) -> str:
    if column in ("forecast_date", "target_date"):
        return "datetime64[ns]"
    return {"horizon": "int64", schema.SERIES_ID: "str"}.get(column, "float64")
