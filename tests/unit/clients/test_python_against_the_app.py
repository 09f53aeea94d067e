"""The Python client against the real facade (fake gateway, SQLite, no Kafka): the gallery
bodies it parses are the ones the API writes, and scoped keys answer as documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from facestream_client import ErasureAccepted, FacestreamClient, FacestreamError, Gallery, GalleryReplay
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.api.factories import ADMIN, API_KEYS, image, make_app

KEYS = f"{API_KEYS},watch-enr:enroller@watchlist,watch-idf:identifier@watchlist|staff"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return make_app(tmp_path, api_keys=KEYS)


def through(app: FastAPI) -> httpx.MockTransport:
    """Each request of the client, handed to the app (its lifespan, Kafka, never runs)."""
    test_client = TestClient(app, raise_server_exceptions=False)

    def handle(request: httpx.Request) -> httpx.Response:
        answer = test_client.request(
            request.method, str(request.url), headers=request.headers, content=request.read()
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(handle)


@pytest.fixture
def admin(app: FastAPI) -> Iterator[FacestreamClient]:
    with FacestreamClient("http://api.test", api_key=ADMIN, transport=through(app)) as fs:
        yield fs


def test_create_list_get_replay_delete_against_the_facade(admin: FacestreamClient) -> None:
    created = admin.create_gallery(
        "watchlist",
        description="site A",
        threshold=0.6,
        quality_filter_enroll="high",
        index_backend="faiss-ivfpq",
        index_options={"nlist": 8, "m": 8},
    )
    assert isinstance(created, Gallery)
    assert (created.id, created.description, created.threshold, created.quality_filter_enroll) == (
        "watchlist",
        "site A",
        0.6,
        "high",
    )
    assert (created.index.backend, created.index.options) == ("faiss-ivfpq", {"nlist": 8, "m": 8})
    assert (created.state, created.generation) == ("active", 0) and created.created_at is not None
    bare = admin.create_gallery("staff")
    assert bare.index.backend == "faiss-flat" and bare.threshold == 0.5  # the deployment's
    with pytest.raises(FacestreamError) as taken:
        admin.create_gallery("staff")
    assert (taken.value.status, taken.value.code) == (409, "gallery_exists")

    assert {g.id for g in admin.list_galleries()} == {"default", "watchlist", "staff"}
    one = admin.get_gallery("watchlist")
    assert (one.id, one.persons, one.faces) == ("watchlist", 0, 0)
    assert admin.replay_gallery("watchlist") == GalleryReplay("watchlist", 1)

    accepted = admin.delete_gallery("staff")
    assert isinstance(accepted, ErasureAccepted)
    assert (accepted.kind, accepted.gallery, accepted.status) == ("gallery", "staff", "pending")
    assert accepted.receipt == f"/erasures/{accepted.erasure_id}"
    with pytest.raises(FacestreamError) as default:
        admin.delete_gallery("default")
    assert default.value.status == 409
    with pytest.raises(FacestreamError) as missing:
        admin.get_gallery("nowhere")
    assert (missing.value.status, missing.value.code) == (404, "unknown_gallery")


def test_a_gallery_client_enrolls_and_identifies_in_its_gallery(
    app: FastAPI, admin: FacestreamClient
) -> None:
    admin.create_gallery("watchlist")
    with FacestreamClient(
        "http://api.test", api_key="watch-enr", gallery="watchlist", transport=through(app)
    ) as enroller:
        enrolled = enroller.enroll("alice", [("a.jpg", image("alice"))])
        assert enrolled.person_id == "alice" and enrolled.accepted
        with pytest.raises(FacestreamError) as outside:  # its key is for watchlist only
            enroller.enroll("alice", [image("alice")], gallery="default")
        assert (outside.value.status, outside.value.code) == (403, "forbidden")
    commands = [e.payload for _, sent, _ in app.state.gateway.requests for _, e in sent]
    assert [(type(c).__name__, c.gallery) for c in commands] == [("EnrollFace", "watchlist")]

    with FacestreamClient("http://api.test", api_key="watch-idf", transport=through(app)) as scoped:
        assert [g.id for g in scoped.list_galleries()] == ["watchlist"]  # staff does not exist yet
        answer = scoped.identify(image("alice"), gallery="watchlist")
        assert answer.request_id
        with pytest.raises(FacestreamError) as no_default:
            scoped.identify(image("alice"))  # the routes without a gallery are default's
        assert (no_default.value.status, no_default.value.code) == (403, "forbidden")
        with pytest.raises(FacestreamError) as not_admin:
            scoped.create_gallery("mine")
        assert (not_admin.value.status, not_admin.value.code) == (403, "forbidden")
