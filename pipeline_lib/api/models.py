"""The shapes of the read API's JSON answers, for validation and the OpenAPI document."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class ForecastRow(BaseModel):
    series_id: str
    forecast_date: dt.date
    target_date: dt.date
    horizon: int
    yhat: float
    yhat_lower: float | None
    yhat_upper: float | None
    model: str
    model_version: str


class LatestForecast(BaseModel):
    series_id: str
    forecast_date: dt.date
    rows: list[ForecastRow]


class ForecastRange(BaseModel):
    series_id: str
    from_: dt.date = Field(alias="from")
    to: dt.date
    count: int
    rows: list[ForecastRow]


class SeriesSummary(BaseModel):
    series_id: str
    forecast_date: dt.date
    horizons: int
    models: list[str]
    link: str


class SeriesList(BaseModel):
    count: int
    series: list[SeriesSummary]


class ErrorBody(BaseModel):
    """Every error answer: what is wrong, and the parameters at fault (empty for a 503)."""

    detail: str
    parameters: list[str]


def _error(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


ERRORS: dict[int | str, dict[str, Any]] = {
    404: _error("unknown series (the parameter is named)"),
    422: _error("a missing or malformed parameter (named)"),
    503: _error("the database does not answer (the reason)"),
}
ERRORS_REPORTS: dict[int | str, dict[str, Any]] = {
    400: _error("a path that tries to leave the reports folder"),
    404: _error("no such file under the reports folder"),
    413: _error("a file too large to serve"),
    503: _error("the reports folder cannot be read"),
}
