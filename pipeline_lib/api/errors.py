"""The read API's error answers: JSON ``{"detail": "...", "parameters": [...]}``.

A 4xx names the parameters at fault in its message and in ``parameters`` (a bad value, a
missing one, an unknown series, a range the wrong way round); a database that does not answer
is a 503 with the reason, and the server logs it. Nothing else about the server is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from pipeline_lib.errors import DatabaseError, StorageError, one_line

log = logging.getLogger(__name__)

MAX_SHOWN = 80  # characters of a bad value repeated in a message


class ApiError(Exception):
    """An answer other than 200: ``status``, the message, the parameters it is about."""

    def __init__(self, status: int, detail: str, parameters: Sequence[str] = ()) -> None:
        super().__init__(detail)
        self.status, self.detail, self.parameters = status, detail, list(parameters)


def shown(value: Any) -> str:
    """``value`` for a message: its repr, cut to ``MAX_SHOWN`` characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def body(detail: str, parameters: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "parameters": list(parameters), **extra}


def unavailable(where: str, exc: BaseException) -> ApiError:
    """The 503 for a database that cannot answer: which one (no password) and why."""
    cause = getattr(exc, "orig", None) or exc
    reason = one_line(str(cause))[:300] or type(cause).__name__
    return ApiError(503, f"database {where} cannot be read: {reason}")


def _validation_message(error: dict[str, Any]) -> tuple[str, str]:
    """``(parameter, message)`` of one of FastAPI's validation errors."""
    loc = [str(p) for p in error.get("loc", ())]
    where, name = (loc[0], loc[-1]) if len(loc) > 1 else ("request", ".".join(loc) or "?")
    what = f"{where} parameter {name!r}"
    if error.get("type") == "missing":
        return name, f"{what} is required"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return name, f"{what}: {message} (got {shown(error.get('input'))})"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``; ``app.state.reader.where`` names the database."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.detail, exc.parameters), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = [_validation_message(e) for e in exc.errors()]
        names = list(dict.fromkeys(name for name, _ in found))
        detail = "; ".join(message for _, message in found)
        errors = jsonable_encoder(exc.errors())
        return JSONResponse(body(detail, names, errors=errors), status_code=422)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        error = unavailable(request.app.state.reader.where, exc)
        log.warning("%s %s: %s", request.method, request.url.path, error.detail)
        return JSONResponse(body(error.detail), status_code=503)

    for kind in (DBAPIError, DatabaseError, StorageError):
        app.add_exception_handler(kind, _database)
