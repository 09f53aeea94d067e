"""What the sync and async clients share: request building and response decoding (no I/O).

`Calls` describes every API call as a `Call` (method, path, parameters, body and the parser of
its answer); the two clients only send them, one blocking and one awaiting.
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from facestream_client.errors import FacestreamError
from facestream_client.models import (
    EnrollResult,
    ErasureAccepted,
    ErasureReceipt,
    Gallery,
    GalleryReplay,
    Health,
    IdentifyResult,
    Person,
    PersonPage,
    Stats,
)

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
class Call(Generic[T]):
    """One API call, described before it is sent: `parse` turns its JSON answer into a result."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    json: dict[str, Any] | None = None
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


def offsets_param(offsets: Mapping[int, int] | str) -> str:
    """`partition:offset,...`, the form /identify's `min_offsets` takes."""
    if isinstance(offsets, str):
        return offsets
    return ",".join(f"{p}:{o}" for p, o in sorted(offsets.items()))


def galleries_from_json(data: dict[str, Any]) -> list[Gallery]:
    return [Gallery.from_json(g) for g in data["galleries"]]


class Calls:
    """Every call of the API, for both clients. `gallery` is the client's gallery: calls that
    act on one gallery go to `/galleries/<gallery>/...`; None sends them to the routes without
    a gallery, which act on `default`. Each call's own `gallery=` overrides the client's."""

    def __init__(self, gallery: str | None = None) -> None:
        self.gallery = gallery

    def scoped(self, path: str, gallery: str | None) -> str:
        chosen = gallery if gallery is not None else self.gallery
        return path if chosen is None else f"/galleries/{segment(chosen)}{path}"

    def enroll(
        self,
        person_id: str,
        images: Iterable[ImageInput],
        *,
        quality_filter: str | None = None,
        gallery: str | None = None,
    ) -> Call[EnrollResult]:
        parts = [("images", image_part(image, i)) for i, image in enumerate(images)]
        if not parts:
            raise ValueError("enroll needs at least one image")
        params = {"quality_filter": quality_filter} if quality_filter else None
        path = self.scoped(f"/enroll/{segment(person_id)}", gallery)
        return Call("POST", path, EnrollResult.from_json, params=params, files=parts)

    def identify(
        self,
        image: ImageInput,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        min_offsets: Mapping[int, int] | str | None = None,
        quality_filter: str | None = None,
        gallery: str | None = None,
    ) -> Call[IdentifyResult]:
        params: dict[str, Any] = {}
        if quality_filter:
            params["quality_filter"] = quality_filter
        if min_offsets:
            params["min_offsets"] = offsets_param(min_offsets)
        if top_k is not None:
            params["top_k"] = top_k
        if threshold is not None:
            params["threshold"] = threshold
        return Call(
            "POST",
            self.scoped("/identify", gallery),
            IdentifyResult.from_json,
            params=params or None,
            files=[("image", image_part(image, 0))],
        )

    def get_person(self, person_id: str, *, gallery: str | None = None) -> Call[Person]:
        return Call("GET", self.scoped(f"/persons/{segment(person_id)}", gallery), Person.from_json)

    def list_persons(self, *, limit: int, offset: int, gallery: str | None = None) -> Call[PersonPage]:
        params = {"limit": limit, "offset": offset}
        return Call("GET", self.scoped("/persons", gallery), PersonPage.from_json, params=params)

    def delete_person(self, person_id: str, *, gallery: str | None = None) -> Call[ErasureAccepted]:
        path = self.scoped(f"/persons/{segment(person_id)}", gallery)
        return Call("DELETE", path, ErasureAccepted.from_json)

    def delete_face(self, face_id: str, *, gallery: str | None = None) -> Call[ErasureAccepted]:
        path = self.scoped(f"/faces/{segment(face_id)}", gallery)
        return Call("DELETE", path, ErasureAccepted.from_json)

    def erasure(self, erasure_id: str) -> Call[ErasureReceipt]:
        return Call("GET", f"/erasures/{segment(erasure_id)}", ErasureReceipt.from_json)

    def stats(self, *, gallery: str | None = None) -> Call[Stats]:
        return Call("GET", self.scoped("/stats", gallery), Stats.from_json)

    def health(self) -> Call[Health]:
        return Call("GET", "/health", Health.from_json, ok_statuses=(503,))

    def create_gallery(
        self,
        gallery_id: str,
        *,
        description: str | None = None,
        pack: str | None = None,
        threshold: float | None = None,
        quality_filter_enroll: str | None = None,
        quality_filter_identify: str | None = None,
        index_backend: str | None = None,
        index_options: Mapping[str, int | float | str] | None = None,
    ) -> Call[Gallery]:
        body: dict[str, Any] = {"id": gallery_id}
        given = {
            "description": description,
            "pack": pack,
            "threshold": threshold,
            "quality_filter_enroll": quality_filter_enroll,
            "quality_filter_identify": quality_filter_identify,
        }
        body.update({k: v for k, v in given.items() if v is not None})
        if index_backend is not None or index_options is not None:
            body["index"] = {"backend": index_backend or "", "options": dict(index_options or {})}
        return Call("POST", "/galleries", Gallery.from_json, json=body)

    def list_galleries(self) -> Call[list[Gallery]]:
        return Call("GET", "/galleries", galleries_from_json)

    def get_gallery(self, gallery_id: str) -> Call[Gallery]:
        return Call("GET", f"/galleries/{segment(gallery_id)}", Gallery.from_json)

    def delete_gallery(self, gallery_id: str) -> Call[ErasureAccepted]:
        return Call("DELETE", f"/galleries/{segment(gallery_id)}", ErasureAccepted.from_json)

    def replay_gallery(self, gallery_id: str) -> Call[GalleryReplay]:
        return Call("POST", f"/galleries/{segment(gallery_id)}/replay", GalleryReplay.from_json)


class ErasureWait:
    """The bookkeeping of `wait_for_erasure`: the deadline, the last answer, the pause before
    the next look. The clients only ask for the receipt and sleep."""

    def __init__(self, erasure_id: str, timeout: float, interval: float) -> None:
        if timeout < 0 or interval <= 0:
            raise ValueError("wait_for_erasure needs timeout >= 0 and interval > 0")
        self.erasure_id, self.timeout, self.interval = erasure_id, timeout, interval
        self.deadline = time.monotonic() + timeout
        self.last: ErasureReceipt | FacestreamError | None = None

    def done(self, receipt: ErasureReceipt) -> bool:
        self.last = receipt
        return receipt.done

    def polls_through(self, error: FacestreamError) -> bool:
        """False for a final error (the caller raises it), True for one to poll through."""
        self.last = error
        return error.code in ERASURE_NOT_YET

    def pause(self) -> float:
        """Seconds to sleep before the next look; the `timeout` error past the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise erasure_timeout(self.erasure_id, self.timeout, self.last)
        return min(self.interval, remaining)


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


def decode(response: httpx.Response, call: Call[T]) -> T:
    """The parsed body of a successful response; FacestreamError for any other."""
    if response.is_success or response.status_code in call.ok_statuses:
        return call.parse(response.json())
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
