"""Covariate values as issued, in the long layout of ``curated/covariates``.

Every covariate source (a series' own file, an exogenous data set, weather forecasts, holidays,
observed weather) turns its values into rows of ``schema.COVARIATE_COLUMNS`` with these two
helpers, so the layout and its types are written once.
"""

from __future__ import annotations

import pandas as pd

from pipeline_lib import schema


def covariate_rows(
    series_id: str | pd.Series, name: str, dates: pd.Series, issued: pd.Series, values: pd.Series
) -> pd.DataFrame:
    """Rows of one covariate: ``values`` for ``dates``, issued on ``issued`` (aligned
    Series); the rows whose value is missing are left out (not issued)."""
    keep = values.notna()
    return pd.DataFrame(
        {
            schema.SERIES_ID: series_id[keep] if isinstance(series_id, pd.Series) else series_id,
            schema.COVARIATE: name,
            schema.DATE: pd.to_datetime(dates[keep]).astype("datetime64[ns]"),
            schema.ISSUED: pd.to_datetime(issued[keep]).astype("datetime64[ns]"),
            schema.VALUE: values[keep].astype("float64"),
        }
    )


def covariate_frame(parts: list[pd.DataFrame], unique: bool = False) -> pd.DataFrame:
    """Covariate values (``schema.COVARIATE_COLUMNS``) of ``parts`` in one frame, typed also
    when there are none. ``unique``: one row per key, the last one given (a value delivered
    again with the same issue time)."""
    kept = [p[schema.COVARIATE_COLUMNS] for p in parts if not p.empty]
    if not kept:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.COVARIATE_DTYPES.items()})
    out = pd.concat(kept, ignore_index=True)
    if unique:
        out = out.drop_duplicates(schema.COVARIATE_KEY, keep="last").reset_index(drop=True)
    return out
