"""docker-compose.yml end to end: Kafka (KRaft), PostgreSQL, init, api, workers, projector,
eraser and replicas from the real image; enroll, identify and erase through the API; /health
and /metrics; replicas scaled to two."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.integration.compose.stack import ComposeStack

pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]

FACES = Path(os.environ.get("FACESTREAM_FACES_DIR", Path(__file__).resolve().parents[4] / "shared" / "faces"))
PERSON = "compose.angelina"
OTHER = "compose.george"


def photo(relative: str) -> bytes:
    image = Image.open(FACES / "people" / relative).convert("RGB")
    image.thumbnail((480, 480))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def enroll(api: httpx.Client, person: str, *names: str) -> list[str]:
    response = api.post(f"/enroll/{person}", files=[("images", (n, photo(n))) for n in names], timeout=120)
    assert response.status_code == 201, response.text
    return [a["face_id"] for a in response.json()["accepted"]]


def identify(api: httpx.Client, name: str) -> dict:
    response = api.post("/identify", files={"image": (name, photo(name))}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_health_is_ready_with_every_check(compose_stack: ComposeStack, api: httpx.Client) -> None:
    response = api.get("/health")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert all(body["checks"].values()), body["checks"]


def test_enroll_then_identify(compose_stack: ComposeStack, api: httpx.Client) -> None:
    assert len(enroll(api, PERSON, "angelina_jolie/img1.jpg", "angelina_jolie/img2.jpg")) == 2
    assert len(enroll(api, OTHER, "george_clooney/img38.jpg")) == 1
    answer = compose_stack.wait_for(
        "the enrolled person to be identified",
        lambda: (a := identify(api, "angelina_jolie/img10.jpg"))["person_id"] == PERSON and a,
        timeout=120,
    )
    assert answer["unknown"] is False
    assert answer["similarity"] >= answer["threshold"]


def test_erase_through_the_api(compose_stack: ComposeStack, api: httpx.Client) -> None:
    response = api.delete(f"/persons/{PERSON}")
    assert response.status_code in (200, 202, 204), response.text
    if response.status_code == 202:  # erasure as a command: follow the receipt
        receipt = response.json()["receipt"]
        done = compose_stack.wait_for(
            "the erasure receipt to say done",
            lambda: (r := api.get(receipt).json())["status"] == "done" and r,
            timeout=180,
        )
        assert done["face_ids"], done
    compose_stack.wait_for(
        "the erased person to be gone from identification",
        lambda: identify(api, "angelina_jolie/img10.jpg")["person_id"] != PERSON,
        timeout=60,
    )
    assert identify(api, "george_clooney/img38.jpg")["person_id"] == OTHER


def test_metrics_are_prometheus_text(compose_stack: ComposeStack, api: httpx.Client) -> None:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "facestream_" in response.text


def test_replicas_scale_to_two(compose_stack: ComposeStack) -> None:
    gallery = compose_stack.stats()["gallery_size"]
    started = time.monotonic()
    compose_stack.compose("up", "-d", "--no-recreate", "--scale", "replica=2", "replica", timeout=600)
    sizes = compose_stack.wait_for(
        "two ready replicas holding the whole gallery",
        lambda: len(s := compose_stack.ready_replicas()) == 2 and set(s.values()) == {gallery} and s,
        timeout=300,
    )
    compose_stack.timings["scale_to_two_s"] = time.monotonic() - started
    assert len(sizes) == 2


def test_api_container_cold_start(compose_stack: ComposeStack, api: httpx.Client) -> None:
    """A fresh API container (models loaded from the image, broker and database up) turns ready."""
    compose_stack.compose("rm", "--stop", "--force", "api", timeout=120)
    started = time.monotonic()
    compose_stack.compose("up", "-d", "--no-deps", "api", timeout=300)
    compose_stack.wait_for(
        "the new api container's /health ready",
        lambda: (r := api.get("/health", timeout=5)).status_code == 200 and r.json()["ready"],
        timeout=300,
    )
    compose_stack.timings["api_container_to_ready_s"] = time.monotonic() - started


def test_the_image_runs_as_non_root_with_its_models_and_no_network(compose_stack: ComposeStack) -> None:
    image = os.environ.get("FACESTREAM_IMAGE", "facestream:latest")
    uid = compose_stack.engine("run", "--rm", "--network=none", "--entrypoint", "id", image, "-u")
    assert uid.strip() == "10001"
    # No network at all: the default pack must already be in the image (no download at run time).
    listing = compose_stack.engine("run", "--rm", "--network=none", image, "models", "list")
    assert "default\tinstalled" in listing, listing
