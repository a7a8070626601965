"""The nightly flow on the electricity sample: covariates from config to forecast, point in time.

Two zones with negative prices among them, day-ahead forecasts known one day ahead, holidays
known for the horizon; a tiny model. Then a config that adds a covariate forces a full
training that names it, and a required covariate that stopped arriving stops the run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from flows.nightly import nightly
from pipeline_lib import paths
from pipeline_lib.config import load_settings
from pipeline_lib.errors import CovariateMissing
from pipeline_lib.ingest.curate import read_covariates
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e

H = 7
AS_OF = dt.date(2019, 12, 20)


def _zone(zone: str, covariates: list[tuple[str, str, int, str]], negative: bool) -> str:
    text = f"""
[[series]]
id = "{zone}"
frequency = "D"
negative_prices = {str(negative).lower()}
source = {{ kind = "sample", options = {{ symbol = "entsoe_{zone}" }} }}
"""
    for name, role, ahead, missing in covariates:
        text += f"""
[[series.covariates]]
name = "{name}"
role = "{role}"
known_ahead = {ahead}
missing = "{missing}"
"""
        if name == "holiday":
            text += f'source = "holidays"\noptions = {{ country = "{zone[:2]}" }}\n'
    return text


BASE = [
    ("load_forecast", "future", 1, "required"),
    ("wind_onshore_forecast", "future", 1, "mask"),
    ("holiday", "future", H, "mask"),
    ("load_actual", "past", 0, "mask"),
]


def _config(tmp_path: Path, name: str, covariates: list[tuple[str, str, int, str]]) -> Path:
    zones = _zone("DE", covariates, True) + _zone("ES", covariates, False)
    return write_config(
        tmp_path / name, tmp_path / "data", zones, horizon=H, start_date="2018-06-01"
    )


def test_electricity_nightly_with_covariates(prefect_api: None, tmp_path: Path) -> None:
    cfg = _config(tmp_path, "electricity.toml", BASE)
    summary = nightly(as_of=AS_OF, config_file=str(cfg))
    assert summary["training"]["action"] == "full" and summary["unforecast_series"] == []
    settings = load_settings(str(cfg))
    engine = create_engine(settings.db_url)
    with engine.connect() as conn:
        fc = pd.read_sql_table("forecasts", conn)
        drift = pd.read_sql_table("drift_metrics", conn)
    assert {"load_forecast", "load_actual"} <= set(drift["feature"])  # covariates watched too
    day = fc[pd.to_datetime(fc["forecast_date"]).dt.date == AS_OF]
    assert sorted(day["series_id"].unique()) == ["DE", "ES"] and len(day) == 2 * H
    assert (day["yhat_lower"] <= day["yhat"]).all() and (day["yhat"] <= day["yhat_upper"]).all()

    # the model records its inputs: roles and reach
    meta = json.loads(
        (
            Path(paths.models_dir(settings.data_dir)) / summary["model_version"] / "metadata.json"
        ).read_text()
    )
    assert meta["feature_set"] == settings.feature_set.to_dict()
    assert {"name": "load_forecast", "known_ahead": 1} in meta["feature_set"]["future_covariates"]

    # stored as issued: nothing issued after the night; tomorrow's day-ahead values are there
    values = read_covariates(settings.data_dir, ["DE", "ES"], AS_OF)
    assert (values["issued"] <= pd.Timestamp(AS_OF)).all()
    load = values[(values["covariate"] == "load_forecast") & (values["series_id"] == "DE")]
    assert load["date"].max() == pd.Timestamp(AS_OF) + pd.Timedelta(days=1)

    # a config that adds a covariate changes the model's inputs: a full training says which
    more = _config(tmp_path, "more.toml", [*BASE, ("gen_forecast", "future", 1, "mask")])
    next_night = AS_OF + dt.timedelta(days=1)
    changed = nightly(as_of=next_night, config_file=str(more))
    assert changed["training"]["action"] == "full"
    assert "gen_forecast" in changed["training"]["reason"]


def test_a_required_covariate_that_stopped_arriving_stops_the_night(
    prefect_api: None, tmp_path: Path
) -> None:
    # the sample's DE file has no load forecast for some days of late 2018 (real gaps): a
    # night whose next day lacks it cannot forecast with a required load forecast
    frame = pd.read_csv("pipeline_lib/sample_data/prices_entsoe_DE.csv", parse_dates=["date"])
    gaps = frame.loc[frame["load_forecast"].isna() & (frame["date"].dt.year == 2018), "date"]
    assert len(gaps), "the sample should hold a real gap in DE's load forecast"
    night = (gaps.iloc[-1] - pd.Timedelta(days=1)).date()
    zone = _zone("DE", [("load_forecast", "future", 1, "required")], True)
    cfg = write_config(
        tmp_path / "gap.toml", tmp_path / "data", zone, horizon=H, start_date="2018-01-01"
    )
    with pytest.raises(CovariateMissing, match="series DE: future covariate 'load_forecast'"):
        nightly(as_of=night, config_file=str(cfg))
