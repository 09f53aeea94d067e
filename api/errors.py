"""Every error leaves as JSON with a machine-readable `code`, the framework's own included."""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ErrorCode, FacestreamError
from core.logging import get_logger

log = get_logger(__name__)

# Which code a validation error gets, by the name of the parameter it is about.
_PARAMETER_CODES = {
    "person_id": ErrorCode.INVALID_PERSON_ID,
    "top_k": ErrorCode.INVALID_PARAMETER,
    "threshold": ErrorCode.INVALID_PARAMETER,
    "limit": ErrorCode.INVALID_PARAMETER,
    "offset": ErrorCode.INVALID_PARAMETER,
    "quality_filter": ErrorCode.INVALID_PARAMETER,
}

_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_FORMAT,
    422: ErrorCode.INVALID_REQUEST,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
    504: ErrorCode.TIMEOUT,
}


def error_response(code: ErrorCode | str, message: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": str(code), "message": message, **extra})


def validation_code(errors: list[dict[str, Any]]) -> ErrorCode:
    for error in errors:
        location = error.get("loc", ())
        name = location[-1] if location else None
        if location and location[0] in ("path", "query") and name in _PARAMETER_CODES:
            return _PARAMETER_CODES[name]
    return ErrorCode.INVALID_REQUEST


async def _facestream_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(FacestreamError, exc)
    return error_response(exc.code, exc.message, exc.http_status)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    code = validation_code(errors)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return error_response(
        code, f"{where}: {first['msg']}" if where else str(first["msg"]), 422, details=errors
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.INVALID_REQUEST)
    message = exc.detail if isinstance(exc.detail, str) else code.value
    return error_response(code, message, exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path)
    return error_response(ErrorCode.INTERNAL, "internal error", 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FacestreamError, _facestream_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
