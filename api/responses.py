"""Error responses every keyed route documents in OpenAPI (FastAPI's own 422 schema is not
what our validation errors look like, so it is replaced too)."""

from __future__ import annotations

from typing import Any

from schemas.api import ErrorBody

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown API key (`unauthorized`)"},
    403: {"model": ErrorBody, "description": "the key's role may not do this (`forbidden`)"},
    422: {"model": ErrorBody, "description": "invalid parameters or body (`invalid_*` codes)"},
    429: {"model": ErrorBody, "description": "over the key's rate (`rate_limited`)"},
}
