"""The Python client and galleries, against a scripted API (httpx.MockTransport): which routes
a gallery-pinned client calls, the /galleries resource, and that the sync and async clients
send the same requests (both are built by `_core.Calls`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from facestream_client import (
    AsyncFacestreamClient,
    ErasureAccepted,
    ErasureReceipt,
    FacestreamClient,
    FacestreamError,
    Gallery,
    GalleryReplay,
    IndexSpec,
)

ERASURE_ID = "9a0c6f3e1b2d4c5e8f7a6b5c4d3e2f10"
FACE_ID = "6b1f0e3c2d4a5b6c7d8e9f0a1b2c3d4e"


def gallery_body(gallery_id: str = "watchlist", **counts: int) -> dict[str, Any]:
    return {
        "id": gallery_id,
        "description": "Persons of interest, site A",
        "pack": "default",
        "threshold": 0.5,
        "quality_filter_enroll": "medium",
        "quality_filter_identify": "none",
        "index": {"backend": "faiss-ivfpq", "options": {"nlist": 64, "m": 16}},
        "generation": 0,
        "state": "active",
        "created_by": "key-1a2b",
        "created_at": "2026-11-30T18:02:11.120000+00:00",
        **counts,
    }


def accepted_body(kind: str, gallery: str) -> dict[str, Any]:
    return {
        "erasure_id": ERASURE_ID,
        "kind": kind,
        "gallery": gallery,
        "person_id": "jane.doe" if kind == "person" else None,
        "face_id": FACE_ID if kind == "face" else None,
        "status": "pending",
        "command": {"topic": "facestream.erasure.requests.v1", "partition": 0, "offset": 7},
        "receipt": f"/erasures/{ERASURE_ID}",
    }


ENROLLED = {"person_id": "jane.doe", "enrollment_id": "e", "model": "m", "accepted": [], "rejected": []}
IDENTIFIED = {
    "request_id": "r",
    "person_id": None,
    "similarity": None,
    "unknown": True,
    "threshold": 0.5,
    "candidates": [],
    "model": "m",
}
PERSON = {
    "person_id": "jane.doe",
    "face_count": 0,
    "faces": [],
    "created_at": "2026-11-30T18:00:00Z",
    "updated_at": "2026-11-30T18:00:00Z",
}
PAGE = {"items": [], "total": 0, "limit": 10, "offset": 0}
STATS = {
    "persons": 0,
    "faces": 0,
    "gallery_size": 0,
    "replicas": [],
    "in_flight": 0,
    "threshold": 0.5,
    "model": "m",
}
HEALTH = {"status": "ready", "live": True, "ready": True, "checks": {}}


class RoutedApi:
    """Answers by (method, path prefix); records every request."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, Any]]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        for (method, suffix), (status, body) in self.routes.items():
            if request.method == method and path.endswith(suffix):
                return httpx.Response(status, json=body)
        return httpx.Response(404, json={"code": "not_found", "message": f"no route {path}"})

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.raw_path.decode()) for r in self.seen]


def every_route() -> RoutedApi:
    return RoutedApi(
        {
            ("POST", "/enroll/jane.doe"): (201, ENROLLED),
            ("POST", "/identify"): (200, IDENTIFIED),
            ("GET", "/persons/jane.doe"): (200, PERSON),
            ("GET", "/persons"): (200, PAGE),
            ("DELETE", "/persons/jane.doe"): (202, accepted_body("person", "watchlist")),
            ("DELETE", f"/faces/{FACE_ID}"): (202, accepted_body("face", "watchlist")),
            ("GET", "/stats"): (200, STATS),
            ("GET", "/health"): (200, HEALTH),
            ("GET", f"/erasures/{ERASURE_ID}"): (404, {"code": "unknown_person", "message": "x"}),
        }
    )


def use_every_route(fs: FacestreamClient) -> None:
    fs.enroll("jane.doe", [b"jpeg"])
    fs.identify(b"jpeg")
    fs.get_person("jane.doe")
    fs.list_persons(limit=10)
    fs.delete_person("jane.doe")
    fs.delete_face(FACE_ID)
    fs.stats()
    fs.health()
    with pytest.raises(FacestreamError):
        fs.erasure(ERASURE_ID)


def test_a_client_without_a_gallery_uses_the_routes_without_one() -> None:
    api = every_route()
    with FacestreamClient("http://api.test", api_key="k", transport=httpx.MockTransport(api)) as fs:
        assert fs.gallery is None
        use_every_route(fs)
    assert api.calls() == [
        ("POST", "/enroll/jane.doe"),
        ("POST", "/identify"),
        ("GET", "/persons/jane.doe"),
        ("GET", "/persons?limit=10&offset=0"),
        ("DELETE", "/persons/jane.doe"),
        ("DELETE", f"/faces/{FACE_ID}"),
        ("GET", "/stats"),
        ("GET", "/health"),
        ("GET", f"/erasures/{ERASURE_ID}"),
    ]


def test_a_gallery_client_scopes_every_gallery_route_but_health_and_receipts() -> None:
    api = every_route()
    transport = httpx.MockTransport(api)
    with FacestreamClient("http://api.test", api_key="k", gallery="watchlist", transport=transport) as fs:
        assert fs.gallery == "watchlist"
        use_every_route(fs)
    assert api.calls() == [
        ("POST", "/galleries/watchlist/enroll/jane.doe"),
        ("POST", "/galleries/watchlist/identify"),
        ("GET", "/galleries/watchlist/persons/jane.doe"),
        ("GET", "/galleries/watchlist/persons?limit=10&offset=0"),
        ("DELETE", "/galleries/watchlist/persons/jane.doe"),
        ("DELETE", f"/galleries/watchlist/faces/{FACE_ID}"),
        ("GET", "/galleries/watchlist/stats"),
        ("GET", "/health"),  # one process, every gallery
        ("GET", f"/erasures/{ERASURE_ID}"),  # erasure ids are global
    ]
    assert all(r.headers["X-API-Key"] == "k" for r in api.seen)


def test_a_call_s_gallery_overrides_the_client_s() -> None:
    api = every_route()
    with FacestreamClient("http://api.test", gallery="watchlist", transport=httpx.MockTransport(api)) as fs:
        fs.identify(b"jpeg", gallery="staff", top_k=3)
        fs.enroll("jane.doe", [b"jpeg"], gallery="default")  # the default gallery, by name
        accepted = fs.delete_person("jane.doe", gallery="site-b_2")
    with FacestreamClient("http://api.test", transport=httpx.MockTransport(api)) as fs:
        fs.stats(gallery="staff")
    assert api.calls() == [
        ("POST", "/galleries/staff/identify?top_k=3"),
        ("POST", "/galleries/default/enroll/jane.doe"),
        ("DELETE", "/galleries/site-b_2/persons/jane.doe"),
        ("GET", "/galleries/staff/stats"),
    ]
    assert accepted.gallery == "watchlist"  # what the (scripted) API answered, read back


def test_gallery_ids_are_escaped_in_paths() -> None:
    api = RoutedApi({})
    with (
        FacestreamClient("http://api.test", gallery="a/b", transport=httpx.MockTransport(api)) as fs,
        pytest.raises(FacestreamError),
    ):
        fs.get_person("jane.doe")
    assert api.calls() == [("GET", "/galleries/a%2Fb/persons/jane.doe")]


def test_create_gallery_sends_only_what_is_given() -> None:
    api = RoutedApi({("POST", "/galleries"): (201, gallery_body())})
    with FacestreamClient("http://api.test", api_key="admin", transport=httpx.MockTransport(api)) as fs:
        created = fs.create_gallery(
            "watchlist",
            description="Persons of interest, site A",
            threshold=0.5,
            quality_filter_enroll="medium",
            index_backend="faiss-ivfpq",
            index_options={"nlist": 64, "m": 16},
        )
        fs.create_gallery("bare")
        fs.create_gallery("tuned", index_options={"nprobe": 8})
    bodies = [json.loads(r.content) for r in api.seen]
    assert [r.headers["content-type"] for r in api.seen] == ["application/json"] * 3
    assert bodies == [
        {
            "id": "watchlist",
            "description": "Persons of interest, site A",
            "threshold": 0.5,
            "quality_filter_enroll": "medium",
            "index": {"backend": "faiss-ivfpq", "options": {"nlist": 64, "m": 16}},
        },
        {"id": "bare"},
        {"id": "tuned", "index": {"backend": "", "options": {"nprobe": 8}}},  # "": the default backend
    ]
    assert isinstance(created, Gallery)
    assert (created.id, created.pack, created.threshold, created.state, created.generation) == (
        "watchlist",
        "default",
        0.5,
        "active",
        0,
    )
    assert created.index == IndexSpec("faiss-ivfpq", {"nlist": 64, "m": 16})
    assert (created.quality_filter_enroll, created.quality_filter_identify) == ("medium", "none")
    assert created.created_at is not None and created.created_at.utcoffset() is not None
    assert (created.persons, created.faces) == (None, None)


@pytest.mark.parametrize(
    ("status", "code"), [(409, "gallery_exists"), (403, "forbidden"), (422, "invalid_request")]
)
def test_create_gallery_errors_carry_the_api_code(status: int, code: str) -> None:
    api = RoutedApi({("POST", "/galleries"): (status, {"code": code, "message": code})})
    with (
        FacestreamClient("http://api.test", transport=httpx.MockTransport(api)) as fs,
        pytest.raises(FacestreamError) as raised,
    ):
        fs.create_gallery("watchlist")
    assert (raised.value.status, raised.value.code) == (status, code)


def test_list_get_replay_and_delete_a_gallery() -> None:
    api = RoutedApi(
        {
            ("GET", "/galleries"): (200, {"galleries": [gallery_body("default"), gallery_body()]}),
            ("GET", "/galleries/watchlist"): (200, gallery_body(persons=3, faces=11)),
            ("POST", "/galleries/watchlist/replay"): (202, {"gallery": "watchlist", "generation": 1}),
            ("DELETE", "/galleries/watchlist"): (202, accepted_body("gallery", "watchlist")),
            ("GET", "/galleries/nowhere"): (404, {"code": "unknown_gallery", "message": "no"}),
        }
    )
    # A client pinned to a gallery manages galleries by the id given, not its own.
    with FacestreamClient("http://api.test", gallery="staff", transport=httpx.MockTransport(api)) as fs:
        listed = fs.list_galleries()
        one = fs.get_gallery("watchlist")
        replay = fs.replay_gallery("watchlist")
        accepted = fs.delete_gallery("watchlist")
        with pytest.raises(FacestreamError) as missing:
            fs.get_gallery("nowhere")
    assert api.calls() == [
        ("GET", "/galleries"),
        ("GET", "/galleries/watchlist"),
        ("POST", "/galleries/watchlist/replay"),
        ("DELETE", "/galleries/watchlist"),
        ("GET", "/galleries/nowhere"),
    ]
    assert [g.id for g in listed] == ["default", "watchlist"] and all(isinstance(g, Gallery) for g in listed)
    assert (one.persons, one.faces) == (3, 11)
    assert replay == GalleryReplay("watchlist", 1)
    assert isinstance(accepted, ErasureAccepted)
    assert (accepted.kind, accepted.gallery, accepted.person_id, accepted.face_id) == (
        "gallery",
        "watchlist",
        None,
        None,
    )
    assert accepted.receipt == f"/erasures/{ERASURE_ID}"
    assert (missing.value.status, missing.value.code) == (404, "unknown_gallery")


def test_a_gallery_erasure_receipt_is_waited_for_like_any_other() -> None:
    receipt = {
        "erasure_id": ERASURE_ID,
        "kind": "gallery",
        "gallery": "watchlist",
        "person_id": None,
        "face_ids": [],
        "face_count": 11,
        "status": "done",
        "waiting_for": [],
        "requested_at": "2026-11-30T18:05:00Z",
        "erased_at": "2026-11-30T18:05:01Z",
        "tombstones": [{"partition": 0, "offset": 90}],
        "shards": [],
        "replicas": [],
        "projection_applied": True,
    }
    api = RoutedApi({("GET", f"/erasures/{ERASURE_ID}"): (200, receipt)})
    with FacestreamClient("http://api.test", transport=httpx.MockTransport(api)) as fs:
        done = fs.wait_for_erasure(ERASURE_ID, timeout=1, interval=0.01)
    assert isinstance(done, ErasureReceipt) and done.done
    assert (done.kind, done.gallery, done.face_ids, done.face_count) == ("gallery", "watchlist", [], 11)


def test_old_answers_without_gallery_fields_still_parse() -> None:
    """An API from before galleries answers no `gallery`: the client reads `default`."""
    body = accepted_body("person", "x")
    del body["gallery"]
    api = RoutedApi({("DELETE", "/persons/jane.doe"): (202, body)})
    with FacestreamClient("http://api.test", transport=httpx.MockTransport(api)) as fs:
        assert fs.delete_person("jane.doe").gallery == "default"


def test_a_scoped_key_outside_its_gallery_is_forbidden() -> None:
    api = RoutedApi({("POST", "/galleries/staff/identify"): (403, {"code": "forbidden", "message": "no"})})
    with (
        FacestreamClient("http://api.test", gallery="staff", transport=httpx.MockTransport(api)) as fs,
        pytest.raises(FacestreamError) as raised,
    ):
        fs.identify(b"jpeg")
    assert (raised.value.status, raised.value.code) == (403, "forbidden")


def request_record(request: httpx.Request) -> tuple[str, str, bytes | None]:
    body = request.read()
    content_type = request.headers.get("content-type", "")
    # Multipart boundaries are random: compare the JSON bodies, and that a form was sent.
    return request.method, request.url.raw_path.decode(), body if "json" in content_type else None


async def test_the_async_client_sends_what_the_sync_client_sends() -> None:
    def script(api: RoutedApi) -> None:
        api.routes.update(
            {
                ("POST", "/galleries"): (201, gallery_body()),
                ("GET", "/galleries"): (200, {"galleries": [gallery_body()]}),
                ("GET", "/galleries/watchlist"): (200, gallery_body(persons=1, faces=2)),
                ("POST", "/galleries/watchlist/replay"): (202, {"gallery": "watchlist", "generation": 2}),
                ("DELETE", "/galleries/watchlist"): (202, accepted_body("gallery", "watchlist")),
            }
        )

    sync_api, async_api = every_route(), every_route()
    script(sync_api)
    script(async_api)
    kwargs: dict[str, Any] = {"api_key": "k", "gallery": "watchlist"}
    options: Callable[[], dict[str, Any]] = lambda: dict(  # noqa: E731
        description="d", threshold=0.4, index_backend="faiss-hnsw", index_options={"m": 32}
    )

    with FacestreamClient("http://api.test", transport=httpx.MockTransport(sync_api), **kwargs) as fs:
        expected = [
            fs.enroll("jane.doe", [b"jpeg"], quality_filter="high"),
            fs.identify(b"jpeg", top_k=2, threshold=0.3, min_offsets={0: 4}),
            fs.get_person("jane.doe"),
            fs.list_persons(limit=10),
            fs.delete_person("jane.doe"),
            fs.delete_face(FACE_ID, gallery="other"),
            fs.stats(),
            fs.create_gallery("watchlist", **options()),
            fs.list_galleries(),
            fs.get_gallery("watchlist"),
            fs.replay_gallery("watchlist"),
            fs.delete_gallery("watchlist"),
        ]

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return async_api(request)

    async with AsyncFacestreamClient(
        "http://api.test", transport=httpx.MockTransport(handler), **kwargs
    ) as fs:
        assert fs.gallery == "watchlist"
        got = [
            await fs.enroll("jane.doe", [b"jpeg"], quality_filter="high"),
            await fs.identify(b"jpeg", top_k=2, threshold=0.3, min_offsets={0: 4}),
            await fs.get_person("jane.doe"),
            await fs.list_persons(limit=10),
            await fs.delete_person("jane.doe"),
            await fs.delete_face(FACE_ID, gallery="other"),
            await fs.stats(),
            await fs.create_gallery("watchlist", **options()),
            await fs.list_galleries(),
            await fs.get_gallery("watchlist"),
            await fs.replay_gallery("watchlist"),
            await fs.delete_gallery("watchlist"),
        ]
    assert got == expected
    assert [request_record(r) for r in async_api.seen] == [request_record(r) for r in sync_api.seen]
    assert async_api.calls()[:2] == [
        ("POST", "/galleries/watchlist/enroll/jane.doe?quality_filter=high"),
        ("POST", "/galleries/watchlist/identify?min_offsets=0%3A4&top_k=2&threshold=0.3"),
    ]
    assert ("DELETE", f"/galleries/other/faces/{FACE_ID}") in async_api.calls()
