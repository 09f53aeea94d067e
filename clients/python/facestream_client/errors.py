"""The one exception type of the client."""

from __future__ import annotations

from typing import Any


class FacestreamError(Exception):
    """Any failure: an error response from the API (its `code` and HTTP `status`), or a
    transport failure (`code` "connection_error" / "timeout", `status` 0)."""

    def __init__(self, code: str, message: str, *, status: int = 0, body: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.body: dict[str, Any] = body or {}

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """For a 422 from enroll: the per-image rejections the API returned."""
        return list(self.body.get("rejected") or [])
