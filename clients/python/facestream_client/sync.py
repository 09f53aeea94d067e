"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx

from facestream_client import _core
from facestream_client._core import Call, ImageInput
from facestream_client.errors import FacestreamError
from facestream_client.models import (
    EnrollResult,
    ErasureAccepted,
    ErasureReceipt,
    Health,
    IdentifyResult,
    Person,
    PersonPage,
    Stats,
)

T = TypeVar("T")


class FacestreamClient:
    """Blocking client. Use as a context manager, or call `close()`.

    >>> with FacestreamClient("http://127.0.0.1:8000", api_key="...") as fs:
    ...     fs.identify("probe.jpg").person_id
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = _core.DEFAULT_TIMEOUT_S,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, key = _core.env_config(base_url, api_key)
        self._http = httpx.Client(
            base_url=url, headers=_core.headers(key, headers), timeout=timeout, transport=transport
        )

    @classmethod
    def from_env(cls, **kwargs: Any) -> FacestreamClient:
        """FACESTREAM_API_URL and FACESTREAM_API_KEY from the environment."""
        return cls(None, None, **kwargs)

    def __enter__(self) -> FacestreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call, parse: Callable[[dict[str, Any]], T]) -> T:
        try:
            response = self._http.request(call.method, call.path, params=call.params, files=call.files)
        except httpx.HTTPError as exc:
            raise _core.transport_error(exc) from exc
        return _core.decode(response, call, parse)

    def enroll(
        self, person_id: str, images: Iterable[ImageInput], *, quality_filter: str | None = None
    ) -> EnrollResult:
        """Enroll a person from one or more photos. When no photo is accepted the API answers
        422: FacestreamError whose `rejected` lists the reasons. `quality_filter` (none, low,
        medium, high, auto; the server's default is auto) refuses faces under its bar."""
        return self._send(_core.enroll_call(person_id, images, quality_filter), EnrollResult.from_json)

    def identify(
        self,
        image: ImageInput,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        min_offsets: Mapping[int, int] | str | None = None,
        quality_filter: str | None = None,
    ) -> IdentifyResult:
        """Who is in the photo: `person_id` is None and `unknown` True below the threshold.
        `min_offsets` (an enrollment's `offsets`) makes only replicas that applied it answer.
        The answer carries the face's `quality` and `low_quality`; `quality_filter` makes the
        API refuse (422 low_quality) a face under its bar instead of answering."""
        call = _core.identify_call(image, top_k, threshold, min_offsets, quality_filter)
        return self._send(call, IdentifyResult.from_json)

    def get_person(self, person_id: str) -> Person:
        return self._send(Call("GET", f"/persons/{_core.segment(person_id)}"), Person.from_json)

    def list_persons(self, *, limit: int = 100, offset: int = 0) -> PersonPage:
        call = Call("GET", "/persons", params={"limit": limit, "offset": offset})
        return self._send(call, PersonPage.from_json)

    def delete_person(self, person_id: str) -> ErasureAccepted:
        """Erase a person: every face enrolled before this call leaves every index and the
        database. The API answers 202 at once; `wait_for_erasure(accepted.erasure_id)` waits
        until it is done."""
        call = Call("DELETE", f"/persons/{_core.segment(person_id)}")
        return self._send(call, ErasureAccepted.from_json)

    def delete_face(self, face_id: str) -> ErasureAccepted:
        """Erase one face (202 at once); follow it with `wait_for_erasure`."""
        return self._send(Call("DELETE", f"/faces/{_core.segment(face_id)}"), ErasureAccepted.from_json)

    def erasure(self, erasure_id: str) -> ErasureReceipt:
        """The receipt of an erasure, `pending` or `done`. FacestreamError 404 `unknown_person` /
        `unknown_face` when the log held nothing to erase, `not_found` for an unknown id."""
        return self._send(_core.erasure_call(erasure_id), ErasureReceipt.from_json)

    def wait_for_erasure(
        self,
        erasure_id: str,
        *,
        timeout: float = _core.ERASURE_WAIT_S,
        interval: float = _core.ERASURE_POLL_S,
    ) -> ErasureReceipt:
        """Poll the receipt every `interval` seconds until it is `done` and return it.
        FacestreamError 404 `unknown_person` / `unknown_face` when there was nothing to erase;
        FacestreamError `timeout` (status 0, `body` with the last `status` and `waiting_for`)
        when it is not done within `timeout` seconds. `not_found` is polled through until the
        deadline (another API instance may not have read the erasure yet)."""
        _core.check_wait(timeout, interval)
        deadline = time.monotonic() + timeout
        last: ErasureReceipt | FacestreamError | None = None
        while True:
            try:
                last = self.erasure(erasure_id)
                if last.done:
                    return last
            except FacestreamError as exc:
                if exc.code not in _core.ERASURE_NOT_YET:
                    raise
                last = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _core.erasure_timeout(erasure_id, timeout, last)
            time.sleep(min(interval, remaining))

    def stats(self) -> Stats:
        return self._send(Call("GET", "/stats"), Stats.from_json)

    def health(self) -> Health:
        """Readiness; a 503 comes back as `Health(ready=False)`."""
        return self._send(Call("GET", "/health", ok_statuses=(503,)), Health.from_json)
