"""Issue 11 through the whole stack: the detector swapped by one setting, and the caller's quality
filter on enroll and identify (real Kafka, PostgreSQL, models; a stack of its own per detector)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import FacestreamError
from core.quality_policy import BARS
from core.settings import Settings
from engine.decode import decode_image
from engine.degrade import degrade
from engine.factory import build_engine
from engine.pipeline import FaceEngine
from tests.fixtures.services import ServiceEndpoints
from tests.integration.pipeline.conftest import faces_dir, running_stack, scratch_database
from tests.integration.pipeline.stack import REPO, Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

PERSON = "angelina_jolie"


def _photos() -> list[Path]:
    return sorted((faces_dir() / "people" / PERSON).iterdir())


def _engine(detector: str) -> FaceEngine:
    settings = Settings(_env_file=None, detector=detector)  # type: ignore[call-arg,arg-type]
    return build_engine(settings.model_copy(update={"models_dir": REPO / settings.models_dir}))


@pytest.fixture(scope="module")
def stacks(
    services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Stack]]:
    """The default stack and one with FACESTREAM_DETECTOR=yunet, nothing else different."""
    with (
        scratch_database(services) as default_db,
        scratch_database(services) as yunet_db,
        running_stack(
            services, default_db, tmp_path_factory.mktemp("default"), replicas={"replica": {}}
        ) as default,
        running_stack(
            services,
            yunet_db,
            tmp_path_factory.mktemp("yunet"),
            replicas={"replica": {}},
            FACESTREAM_DETECTOR="yunet",
        ) as yunet,
    ):
        yield {"retinaface": default, "yunet": yunet}


def _enroll(stack: Stack, person: str, paths: list[Path], **params: str) -> tuple[int, dict]:
    files = [("images", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    with stack.client() as client:
        response = client.post(f"/enroll/{person}", files=files, params=params)
    return response.status_code, response.json()


def _identify(stack: Stack, data: bytes, **params: str) -> tuple[int, dict]:
    with stack.client() as client:
        response = client.post("/identify", files={"image": ("probe.jpg", data)}, params=params)
    return response.status_code, response.json()


@pytest.mark.parametrize("detector", ["retinaface", "yunet"])
def test_the_detector_is_swapped_by_one_setting(stacks: dict[str, Stack], detector: str) -> None:
    stack, probe, enrolled = stacks[detector], _photos()[0], _photos()[1:]
    status, body = _enroll(stack, PERSON, enrolled)
    assert status == 201 and len(body["accepted"]) == len(enrolled), body
    stack.wait_for(
        "faces indexed", lambda: _identify(stack, probe.read_bytes())[1].get("person_id") == PERSON
    )
    status, answer = _identify(stack, probe.read_bytes())
    assert status == 200 and answer["person_id"] == PERSON and not answer["low_quality"]
    assert answer["quality_filter"] == "none" and answer["quality"] > BARS["medium"]
    # The box the stack answered is the one this detector finds in-process, not the other's.
    own = _engine(detector).prepare(probe.read_bytes()).faces[0].bbox
    other = (
        _engine("yunet" if detector == "retinaface" else "retinaface")
        .prepare(probe.read_bytes())
        .faces[0]
        .bbox
    )
    box = answer["bbox"]
    assert box["x"] == pytest.approx(own.x, abs=0.5) and box["width"] == pytest.approx(own.width, abs=0.5)
    assert abs(box["width"] - other.width) > 1.0 or abs(box["x"] - other.x) > 1.0


def test_identify_answers_a_poor_face_flagged_and_refuses_it_only_on_request(
    stacks: dict[str, Stack],
) -> None:
    stack, engine = stacks["retinaface"], _engine("retinaface")
    photo = _photos()[0]
    data = photo.read_bytes()
    width = engine.prepare(data).faces[0].bbox.width * decode_image(data, engine.limits).scale
    blurred = degrade(decode_image(data, engine.limits).bgr, "blur10", face_width=width)
    status, answer = _identify(stack, blurred)
    assert status == 200, answer  # the default filter is `none`: answered...
    assert answer["low_quality"] is True and answer["quality"] < BARS["low"]  # ...and flagged
    status, refused = _identify(stack, blurred, quality_filter="low")
    assert status == 422 and refused["code"] == "low_quality", refused
    assert "below 0.15" in refused["message"]
    status, bad = _identify(stack, blurred, quality_filter="strict")
    assert status == 422 and bad["code"] in ("invalid_parameter", "invalid_request"), bad


def _useless_face(engine: FaceEngine) -> bytes:
    """A heavily blurred copy of one of the person's photos in which the face is still found,
    and scores under the `auto` bar (chosen in-process with the same engine as the stack)."""
    for path in _photos()[2:]:
        data = path.read_bytes()
        width = engine.prepare(data).faces[0].bbox.width * decode_image(data, engine.limits).scale
        blurred = degrade(decode_image(data, engine.limits).bgr, "blur10", face_width=width)
        try:
            prepared = engine.prepare(blurred)
        except FacestreamError:
            continue  # no face left at all: that is no_face, not this test
        _, qualities = engine.embed_scored([prepared.faces[0].crop])
        if qualities is not None and qualities[0] < BARS["auto"]:
            return blurred
    pytest.fail("no blurred photo of the person keeps a detectable face under the auto bar")


def test_enroll_auto_rejects_a_useless_face_with_its_reason_and_keeps_the_rest(
    stacks: dict[str, Stack],
) -> None:
    stack, engine = stacks["retinaface"], _engine("retinaface")
    good = _photos()[1]
    blurred = _useless_face(engine)
    files = [
        ("images", (good.name, good.read_bytes(), "application/octet-stream")),
        ("images", ("useless.jpg", blurred, "application/octet-stream")),
    ]
    with stack.client() as client:
        response = client.post("/enroll/quality-check", files=files)
    body = response.json()
    assert response.status_code == 201, body
    assert [a["filename"] for a in body["accepted"]] == [good.name]
    (rejected,) = body["rejected"]
    assert rejected["filename"] == "useless.jpg" and rejected["reason"] == "low_quality"
    assert "below 0.05" in rejected["message"]
    # The caller may lower the bar for one request (the role allows it): then it is enrolled.
    with stack.client() as client:
        response = client.post("/enroll/quality-check", files=files[1:], params={"quality_filter": "none"})
    assert response.status_code == 201 and len(response.json()["accepted"]) == 1, response.text
