"""One error type with a machine-readable code; every layer raises it, the edges translate it."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    LOW_QUALITY = "low_quality"
    SPOOF_SUSPECTED = "spoof_suspected"
    UNDECODABLE_IMAGE = "undecodable_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    IMAGE_TOO_LARGE = "image_too_large"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNKNOWN_PERSON = "unknown_person"
    UNKNOWN_FACE = "unknown_face"
    UNKNOWN_GALLERY = "unknown_gallery"
    GALLERY_EXISTS = "gallery_exists"
    GALLERY_DELETING = "gallery_deleting"
    DEFAULT_GALLERY = "default_gallery"
    INVALID_PERSON_ID = "invalid_person_id"
    INVALID_PARAMETER = "invalid_parameter"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    MODEL_MISMATCH = "model_mismatch"
    MODEL_NOT_INSTALLED = "model_not_installed"
    INVALID_MESSAGE = "invalid_message"
    INTERNAL = "internal_error"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.NO_FACE: 422,
    ErrorCode.MULTIPLE_FACES: 422,
    ErrorCode.LOW_QUALITY: 422,
    ErrorCode.SPOOF_SUSPECTED: 422,
    ErrorCode.UNDECODABLE_IMAGE: 422,
    ErrorCode.UNSUPPORTED_FORMAT: 415,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNKNOWN_PERSON: 404,
    ErrorCode.UNKNOWN_FACE: 404,
    ErrorCode.UNKNOWN_GALLERY: 404,
    ErrorCode.GALLERY_EXISTS: 409,
    ErrorCode.GALLERY_DELETING: 409,
    ErrorCode.DEFAULT_GALLERY: 409,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.INVALID_PERSON_ID: 422,
    ErrorCode.INVALID_PARAMETER: 422,
    ErrorCode.INVALID_REQUEST: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.MODEL_MISMATCH: 409,
    ErrorCode.MODEL_NOT_INSTALLED: 503,
    ErrorCode.INVALID_MESSAGE: 400,
    ErrorCode.INTERNAL: 500,
}


class FacestreamError(Exception):
    """An expected failure: it carries the code a client or a dead-letter record shows."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def __repr__(self) -> str:
        return f"FacestreamError({self.code.value!r}, {self.message!r})"
