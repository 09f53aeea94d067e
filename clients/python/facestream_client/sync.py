"""The blocking client. Requests are built by `_core.Calls`; this module only sends them."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import httpx

from facestream_client import _core
from facestream_client._core import Call, ImageInput
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

T = TypeVar("T")


class FacestreamClient:
    """Blocking client. Use as a context manager, or call `close()`.

    `gallery` pins the client to one gallery: enroll, identify, persons, faces and stats go to
    `/galleries/<gallery>/...`. Without it they use the routes without a gallery, which act on
    `default`. Every such call also takes its own `gallery=`.

    >>> with FacestreamClient("http://127.0.0.1:8000", api_key="...") as fs:
    ...     fs.identify("probe.jpg").person_id
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        gallery: str | None = None,
        timeout: float = _core.DEFAULT_TIMEOUT_S,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, key = _core.env_config(base_url, api_key)
        self.calls = _core.Calls(gallery)
        self._http = httpx.Client(
            base_url=url, headers=_core.headers(key, headers), timeout=timeout, transport=transport
        )

    @property
    def gallery(self) -> str | None:
        """The client's gallery; None: the routes without one (the `default` gallery)."""
        return self.calls.gallery

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

    def send(self, call: Call[T]) -> T:
        """Send one described call; its parsed answer, or FacestreamError."""
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, files=call.files, json=call.json
            )
        except httpx.HTTPError as exc:
            raise _core.transport_error(exc) from exc
        return _core.decode(response, call)

    def enroll(
        self,
        person_id: str,
        images: Iterable[ImageInput],
        *,
        quality_filter: str | None = None,
        gallery: str | None = None,
    ) -> EnrollResult:
        """Enroll a person from one or more photos. When no photo is accepted the API answers
        422: FacestreamError whose `rejected` lists the reasons. `quality_filter` (none, low,
        medium, high, auto; default: the gallery's) refuses faces under its bar."""
        return self.send(self.calls.enroll(person_id, images, quality_filter=quality_filter, gallery=gallery))

    def identify(
        self,
        image: ImageInput,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        min_offsets: Mapping[int, int] | str | None = None,
        quality_filter: str | None = None,
        gallery: str | None = None,
    ) -> IdentifyResult:
        """Who is in the photo: `person_id` is None and `unknown` True below the threshold.
        `min_offsets` (an enrollment's `offsets`) makes only replicas that applied it answer.
        The answer carries the face's `quality` and `low_quality`; `quality_filter` makes the
        API refuse (422 low_quality) a face under its bar instead of answering."""
        call = self.calls.identify(
            image,
            top_k=top_k,
            threshold=threshold,
            min_offsets=min_offsets,
            quality_filter=quality_filter,
            gallery=gallery,
        )
        return self.send(call)

    def get_person(self, person_id: str, *, gallery: str | None = None) -> Person:
        return self.send(self.calls.get_person(person_id, gallery=gallery))

    def list_persons(self, *, limit: int = 100, offset: int = 0, gallery: str | None = None) -> PersonPage:
        return self.send(self.calls.list_persons(limit=limit, offset=offset, gallery=gallery))

    def delete_person(self, person_id: str, *, gallery: str | None = None) -> ErasureAccepted:
        """Erase a person: every face enrolled before this call leaves every index and the
        database. The API answers 202 at once; `wait_for_erasure(accepted.erasure_id)` waits
        until it is done."""
        return self.send(self.calls.delete_person(person_id, gallery=gallery))

    def delete_face(self, face_id: str, *, gallery: str | None = None) -> ErasureAccepted:
        """Erase one face (202 at once); follow it with `wait_for_erasure`."""
        return self.send(self.calls.delete_face(face_id, gallery=gallery))

    def erasure(self, erasure_id: str) -> ErasureReceipt:
        """The receipt of an erasure, `pending` or `done`. FacestreamError 404 `unknown_person` /
        `unknown_face` when the log held nothing to erase, `not_found` for an unknown id."""
        return self.send(self.calls.erasure(erasure_id))

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
        wait = _core.ErasureWait(erasure_id, timeout, interval)
        while True:
            try:
                receipt = self.erasure(erasure_id)
            except FacestreamError as exc:
                if not wait.polls_through(exc):
                    raise
            else:
                if wait.done(receipt):
                    return receipt
            time.sleep(wait.pause())

    def stats(self, *, gallery: str | None = None) -> Stats:
        return self.send(self.calls.stats(gallery=gallery))

    def health(self) -> Health:
        """Readiness; a 503 comes back as `Health(ready=False)`."""
        return self.send(self.calls.health())

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
    ) -> Gallery:
        """Create a gallery (an admin key for every gallery). What is left out is the
        deployment's: its pack, threshold, quality filters and index backend. FacestreamError
        409 `gallery_exists` when the id is taken."""
        return self.send(
            self.calls.create_gallery(
                gallery_id,
                description=description,
                pack=pack,
                threshold=threshold,
                quality_filter_enroll=quality_filter_enroll,
                quality_filter_identify=quality_filter_identify,
                index_backend=index_backend,
                index_options=index_options,
            )
        )

    def list_galleries(self) -> list[Gallery]:
        """The galleries this key may see."""
        return self.send(self.calls.list_galleries())

    def get_gallery(self, gallery_id: str) -> Gallery:
        """One gallery with its counts; FacestreamError 404 `unknown_gallery`."""
        return self.send(self.calls.get_gallery(gallery_id))

    def delete_gallery(self, gallery_id: str) -> ErasureAccepted:
        """Delete a gallery: an erasure of every face in it (202 at once, kind `gallery`);
        follow it with `wait_for_erasure`. The `default` gallery cannot be deleted (409)."""
        return self.send(self.calls.delete_gallery(gallery_id))

    def replay_gallery(self, gallery_id: str) -> GalleryReplay:
        """Have every replica rebuild this gallery's index from the log (202, a new generation)."""
        return self.send(self.calls.replay_gallery(gallery_id))
