"""The read API: FastAPI routes over the published forecasts (``forecast-pipeline serve``).

It answers from the SQL tables and the reports folder only; it never trains or fetches. One
pooled, read-only engine per app (:func:`pipeline_lib.api.queries.open_reader`), on
``serve.database_url`` (e.g. a login of the read-only BI role) or the pipeline's own database.
Endpoints are plain functions: FastAPI runs them in its thread pool.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import DBAPIError

import pipeline_lib
from pipeline_lib import paths, schema
from pipeline_lib.api import queries
from pipeline_lib.api.errors import ApiError, body, install, shown, unavailable
from pipeline_lib.api.links import series_link
from pipeline_lib.api.models import (
    ERRORS,
    ERRORS_REPORTS,
    ForecastRange,
    LatestForecast,
    SeriesList,
)
from pipeline_lib.api.page import series_page
from pipeline_lib.api.reports import read_report
from pipeline_lib.config import Settings
from pipeline_lib.errors import DatabaseError, StorageError

MAX_RANGE_DAYS = 366  # forecast dates one /forecasts request may span, both ends included
RECENT_DAYS = 90  # actuals drawn before the forecast date (as the run's plot draws them)
SERIES_ID_MAX = 64  # forecasts.series_id is String(64)
SERIES_ID_PATTERN = r"^[A-Za-z0-9_\-]+$"  # as SeriesConfig.id
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

SeriesId = Annotated[
    str,
    Query(
        min_length=1,
        max_length=SERIES_ID_MAX,
        pattern=SERIES_ID_PATTERN,
        description="series id, as configured (letters, digits, _ and -)",
    ),
]
PathSeriesId = Annotated[
    str, Path(min_length=1, max_length=SERIES_ID_MAX, pattern=SERIES_ID_PATTERN)
]


def _date_query(name: str) -> Any:
    return Query(
        alias=name,
        description=f"YYYY-MM-DD; the {'first' if name == 'from' else 'last'} forecast date",
        json_schema_extra={"format": "date"},
        examples=["2020-12-30"],
    )


def parse_date(name: str, text: str) -> dt.date:
    """A ``YYYY-MM-DD`` query value; ApiError 422 naming ``name`` otherwise."""
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise ApiError(
        422, f"query parameter {name!r}: not a YYYY-MM-DD date (got {shown(text)})", [name]
    )


def _unknown(series_id: str, parameter: str) -> ApiError:
    return ApiError(404, f"unknown series {series_id!r}: it has no published forecast", [parameter])


def create_app(settings: Settings) -> FastAPI:
    """The app over ``settings``' database (``serve.database_url`` or ``database_url``) and
    reports folder. Nothing connects until the first request; the engine is disposed when the
    app shuts down."""
    reader = queries.open_reader(queries.read_url(settings))
    reports_root = paths.reports_dir(settings.data_dir)
    prefix = urlsplit(settings.serve.public_base).path.rstrip("/")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        reader.dispose()

    app = FastAPI(
        title="forecast-pipeline read API",
        version=pipeline_lib.__version__,
        description="The published forecasts, read from the pipeline's SQL tables (and its "
        "reports folder). Read-only: it never trains or fetches. Errors are JSON "
        '`{"detail": "...", "parameters": [...]}` naming the parameters at fault; 503 when '
        "the database does not answer.",
        lifespan=lifespan,
    )
    app.state.reader, app.state.settings = reader, settings
    install(app)

    def latest_rows(series_id: str, parameter: str = "series") -> list[dict[str, Any]]:
        with reader.connect() as conn:
            rows = queries.latest_forecast(conn, series_id)
        if not rows:
            raise _unknown(series_id, parameter)
        return rows

    @app.get("/health", responses={503: ERRORS[503]}, summary="whether the database answers")
    def health() -> JSONResponse:
        """200 with the database's dialect, the newest forecast date and the number of series
        with a forecast; 503 with the reason when the database does not answer."""
        try:
            with reader.connect() as conn:
                facts = queries.overview(conn)
        except (DBAPIError, DatabaseError, StorageError) as exc:
            error = unavailable(reader.where, exc)
            extra = {"status": "unavailable", "database": reader.dialect}
            return JSONResponse(body(error.detail, **extra), status_code=503)
        latest = facts["latest_forecast_date"]
        return JSONResponse(
            {
                "status": "ok",
                "database": reader.dialect,
                "latest_forecast_date": latest.isoformat() if latest else None,
                "series_count": facts["series_count"],
            }
        )

    @app.get(
        "/series",
        response_model=SeriesList,
        responses={503: ERRORS[503]},
        summary="every series with a forecast",
    )
    def series() -> dict[str, Any]:
        """Per series: its newest forecast date, the number of horizons (rows) of that
        forecast, the models that made them, and the link to its page."""
        with reader.connect() as conn:
            found = queries.series_summaries(conn)
        for entry in found:
            entry["link"] = series_link(settings, entry["series_id"])
        return {"count": len(found), "series": found}

    @app.get(
        "/forecasts/latest",
        response_model=LatestForecast,
        responses=ERRORS,
        summary="a series' latest forecast",
    )
    def forecasts_latest(series: SeriesId) -> dict[str, Any]:
        """The rows of the series' newest forecast date (one per target date), by target
        date. 404 when the series has no forecast."""
        rows = latest_rows(series)
        return {"series_id": series, "forecast_date": rows[0]["forecast_date"], "rows": rows}

    @app.get(
        "/forecasts",
        response_model=ForecastRange,
        responses=ERRORS,
        summary="a series' forecasts over a range of forecast dates",
        description=f"The rows of `series` whose **forecast date** (the as-of date, not the "
        f"target date) lies in `[from, to]`, both ends included, ordered by forecast date "
        f"then target date. `from` must not be after `to`, and the range may span at most "
        f"{MAX_RANGE_DAYS} days (both ends counted). A known series with no forecast in the "
        "range gives an empty `rows`; an unknown series is a 404.",
    )
    def forecasts_range(
        series: SeriesId,
        start: Annotated[str, _date_query("from")],
        end: Annotated[str, _date_query("to")],
    ) -> dict[str, Any]:
        first, last = parse_date("from", start), parse_date("to", end)
        if first > last:
            raise ApiError(422, f"'from' {first} is after 'to' {last}", ["from", "to"])
        days = (last - first).days + 1
        if days > MAX_RANGE_DAYS:
            raise ApiError(
                422,
                f"'from' {first} to 'to' {last} spans {days} days; at most {MAX_RANGE_DAYS}",
                ["from", "to"],
            )
        with reader.connect() as conn:
            rows = queries.forecast_range(conn, series, first, last)
            if not rows and not queries.has_forecasts(conn, series):
                raise _unknown(series, "series")
        return {"series_id": series, "from": first, "to": last, "count": len(rows), "rows": rows}

    def page_data(series_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = latest_rows(series_id, "series_id")
        as_of = rows[0]["forecast_date"]
        start = as_of - dt.timedelta(days=RECENT_DAYS - 1)
        with reader.connect() as conn:
            observed = queries.recent_actuals(conn, series_id, start, rows[-1]["target_date"])
        return rows, observed

    @app.get(
        "/series/{series_id}",
        response_class=HTMLResponse,
        responses=ERRORS,
        summary="a series' page",
    )
    def series_html(series_id: PathSeriesId) -> HTMLResponse:
        """Its recent actuals, the latest forecast and its band (the PNG of
        `/series/{series_id}/plot.png`), and a table of the forecast rows."""
        rows, observed = page_data(series_id)
        quoted = quote(series_id, safe="")
        links = {
            "plot": f"{prefix}/series/{quoted}/plot.png",
            "latest": f"{prefix}/forecasts/latest?series={quoted}",
            "series": f"{prefix}/series",
        }
        return HTMLResponse(series_page(series_id, rows, observed, links))

    @app.get(
        "/series/{series_id}/plot.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **ERRORS},
        summary="a series' plot",
    )
    def series_plot(series_id: PathSeriesId) -> Response:
        """The run artifact's plot (``pipeline_lib.publishing.plot.plot_forecasts``) for this
        series: its actuals of the last 90 days up to the forecast date, the median forecast
        and its band."""
        import pandas as pd

        from pipeline_lib.publishing.plot import plot_forecasts  # heavy: imported on first use

        rows, observed = page_data(series_id)
        as_of = rows[0]["forecast_date"]
        past = [r for r in observed if r["target_date"] <= as_of]
        features = pd.DataFrame(  # the features' columns that the plot reads
            {
                schema.SERIES_ID: [series_id] * len(past),
                schema.DATE: pd.to_datetime([r["target_date"] for r in past]),
                schema.Y: pd.Series([r["actual"] for r in past], dtype=float),
            }
        )
        frame = pd.DataFrame(rows)
        for column in ("yhat", "yhat_lower", "yhat_upper"):
            frame[column] = frame[column].astype(float)
        png = plot_forecasts(features, frame, as_of, recent_days=RECENT_DAYS, series=[series_id])
        return Response(png, media_type="image/png")

    @app.get(
        "/reports/{path:path}",
        response_class=Response,
        responses=ERRORS_REPORTS,
        summary="a file of the reports folder",
        description="A file under the data folder's `reports/` (run plots, run records, "
        "validation reports, Data Docs), with its content type. `path` is relative to that "
        "folder: 400 for one that tries to leave it (`..`, an absolute path), 404 when the "
        "file does not exist.",
    )
    def report(path: str) -> Response:
        found = read_report(reports_root, path)
        return Response(found.data, media_type=found.media_type)

    return app
