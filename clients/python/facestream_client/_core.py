"""What the sync and async clients share: request building and response decoding (no I/O)."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

import httpx

from facestream_client.errors import FacestreamError
from facestream_client.models import ErasureReceipt

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 60.0
#: `wait_for_erasure` defaults: how long to wait for `done`, and how often to ask.
ERASURE_WAIT_S = 60.0
ERASURE_POLL_S = 0.5
#: Codes `wait_for_erasure` keeps polling through: another API instance may not have read the
#: erasure off the ledger yet. `unknown_person` / `unknown_face` (nothing to erase) are final.
ERASURE_NOT_YET = frozenset({"not_found"})

#: A photo: a path, raw bytes, an open binary file, or a (filename, bytes) pair.
ImageInput = str | os.PathLike[str] | bytes | IO[bytes] | tuple[str, bytes]

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One API call, described before it is sent."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    ok_statuses: tuple[int, ...] = ()


def env_config(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    return (
        base_url or os.environ.get("FACESTREAM_API_URL") or DEFAULT_URL,
        api_key if api_key is not None else os.environ.get("FACESTREAM_API_KEY"),
    )


def headers(api_key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    out = {"Accept": "application/json", "User-Agent": "facestream-client-python/0.1"}
    if api_key:
        out["X-API-Key"] = api_key
    out.update(extra or {})
    return out


def image_part(image: ImageInput, index: int) -> tuple[str, bytes, str]:
    """(filename, bytes, content type) for one multipart part."""
    if isinstance(image, tuple):
        name, data = image
    elif isinstance(image, bytes | bytearray):
        name, data = f"image-{index}.jpg", bytes(image)
    elif isinstance(image, str | os.PathLike):
        path = Path(image)
        name, data = path.name, path.read_bytes()
    else:
        data = image.read()
        name = Path(getattr(image, "name", f"image-{index}.jpg")).name
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return name, data, content_type


def segment(value: str) -> str:
    return quote(value, safe="")


def enroll_call(person_id: str, images: Iterable[ImageInput], quality_filter: str | None = None) -> Call:
    parts = [("images", image_part(image, i)) for i, image in enumerate(images)]
    if not parts:
        raise ValueError("enroll needs at least one image")
    params = {"quality_filter": quality_filter} if quality_filter else None
    return Call("POST", f"/enroll/{segment(person_id)}", params=params, files=parts)


def offsets_param(offsets: Mapping[int, int] | str) -> str:
    """`partition:offset,...`, the form /identify's `min_offsets` takes."""
    if isinstance(offsets, str):
        return offsets
    return ",".join(f"{p}:{o}" for p, o in sorted(offsets.items()))


def identify_call(
    image: ImageInput,
    top_k: int | None,
    threshold: float | None,
    min_offsets: Mapping[int, int] | str | None = None,
    quality_filter: str | None = None,
) -> Call:
    params: dict[str, Any] = {}
    if quality_filter:
        params["quality_filter"] = quality_filter
    if min_offsets:
        params["min_offsets"] = offsets_param(min_offsets)
    if top_k is not None:
        params["top_k"] = top_k
    if threshold is not None:
        params["threshold"] = threshold
    return Call("POST", "/identify", params=params or None, files=[("image", image_part(image, 0))])


def erasure_call(erasure_id: str) -> Call:
    return Call("GET", f"/erasures/{segment(erasure_id)}")


def check_wait(timeout: float, interval: float) -> None:
    if timeout < 0 or interval <= 0:
        raise ValueError("wait_for_erasure needs timeout >= 0 and interval > 0")


def erasure_timeout(
    erasure_id: str, timeout: float, last: ErasureReceipt | FacestreamError | None
) -> FacestreamError:
    """The `timeout` error of `wait_for_erasure`: its body says where the erasure stood."""
    body: dict[str, Any] = {"erasure_id": erasure_id}
    if isinstance(last, ErasureReceipt):
        body.update(status=last.status, waiting_for=list(last.waiting_for))
        where = f"still {last.status}, waiting for {', '.join(last.waiting_for) or 'nothing'}"
    elif isinstance(last, FacestreamError):
        body.update(last_error=last.code)
        where = f"last answer {last.status} {last.code}"
    else:
        where = "no answer"
    return FacestreamError(
        "timeout", f"erasure {erasure_id} not done after {timeout:g} s: {where}", body=body
    )


def decode(response: httpx.Response, call: Call, parse: Callable[[dict[str, Any]], T]) -> T:
    """The parsed body of a successful response; FacestreamError for any other."""
    if response.is_success or response.status_code in call.ok_statuses:
        return parse(response.json())
    raise error_from(response)


def error_from(response: httpx.Response) -> FacestreamError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return FacestreamError(
            "http_error", response.text[:200] or response.reason_phrase, status=response.status_code
        )
    return FacestreamError(
        str(body.get("code", "http_error")),
        str(body.get("message", "")),
        status=response.status_code,
        body=body,
    )


def transport_error(exc: httpx.HTTPError) -> FacestreamError:
    code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
    return FacestreamError(code, str(exc) or type(exc).__name__)
