"""Extract the bundled sample data from packages that ship it offline (run once, by hand).

    pip install arch==8.0.0 pmdarima==2.1.1 vega_datasets==0.9.0
    python scripts/extract_sample_data.py

Writes pipeline_lib/sample_data/*.csv: the rows from 2012-01-01 to 2015-12-31 (the span of the
Seattle weather record), values exactly as the packages ship them. PROVENANCE.md beside the files
says where each came from and under which licence.
"""

from __future__ import annotations

from pathlib import Path

import arch.data.nasdaq
import arch.data.sp500
import arch.data.wti
import pandas as pd
import pmdarima.datasets
from vega_datasets import local_data

OUT = Path(__file__).resolve().parents[1] / "pipeline_lib" / "sample_data"
START, END = "2012-01-01", "2015-12-31"


def _ohlcv(df: pd.DataFrame) -> pd.DataFrame:
    df = df.rename(columns=str.lower).rename(columns={"date": "date"})
    return df[["date", "open", "high", "low", "close", "volume"]]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    frames = {
        "SP500": _ohlcv(arch.data.sp500.load().rename_axis("Date").reset_index()),
        "NASDAQ": _ohlcv(arch.data.nasdaq.load().rename_axis("Date").reset_index()),
        "MSFT": _ohlcv(pmdarima.datasets.load_msft()),
        "WTI": arch.data.wti.load()
        .rename_axis("date")
        .reset_index()
        .rename(columns={"DCOILWTICO": "close"}),
    }
    for symbol, df in frames.items():
        df = df.assign(date=pd.to_datetime(df["date"]).dt.date)
        df = df[
            (df["date"] >= pd.Timestamp(START).date()) & (df["date"] <= pd.Timestamp(END).date())
        ]
        df = df.dropna(subset=["close"])  # FRED marks market holidays with "." (read as NaN)
        df.to_csv(OUT / f"prices_{symbol}.csv", index=False)
        print(symbol, len(df), df["date"].min(), df["date"].max())

    w = local_data.seattle_weather()
    w = w.rename(columns={"wind": "wind_speed"})
    w = w.assign(date=pd.to_datetime(w["date"]).dt.date)
    w = w[["date", "temp_max", "temp_min", "precipitation", "wind_speed", "weather"]]
    w.to_csv(OUT / "weather_seattle.csv", index=False)
    print("seattle", len(w), w["date"].min(), w["date"].max())


if __name__ == "__main__":
    main()
