"""The identify policy is resolved where a request is accepted: a threshold set on the facade
alone changes the answers, although the workers and replicas run with another."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.pipeline.stack import API_KEY, Stack, free_port
from tests.integration.pipeline.test_end_to_end import HELD_BACK, PEOPLE, _files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]


def test_a_threshold_set_only_on_the_facade_changes_the_answers(stack: Stack) -> None:
    person, source = f"policy.{uuid.uuid4().hex[:6]}", "elon_musk"
    with stack.client() as client:
        enrolled = client.post(f"/enroll/{person}", files=_files(PEOPLE[source][1:]))
    assert enrolled.status_code == 201, enrolled.text

    port = free_port()
    # A second facade; only it reads this threshold (the workers and replicas keep theirs).
    stack.start(
        "api-strict",
        "api",
        FACESTREAM_API_PORT=str(port),
        FACESTREAM_INSTANCE_ID=f"strict-{uuid.uuid4().hex[:6]}",
        FACESTREAM_THRESHOLD="0.999",
    )
    strict = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_KEY}, timeout=60)
    probe = {"image": ("probe.jpg", HELD_BACK[source].read_bytes())}
    try:
        stack.wait_for(
            "the strict facade ready", lambda: strict.get("/health").json().get("ready"), timeout=120
        )
        with stack.client() as client:
            lenient = client.post("/identify", files=probe).json()
        answer = strict.post("/identify", files=probe).json()
        assert strict.get("/stats").json()["threshold"] == 0.999
    finally:
        strict.close()
        stack.kill("api-strict", sig=15)
    assert lenient["candidates"][0]["person_id"] in (person, source)
    assert lenient["unknown"] is False and lenient["threshold"] < 0.999
    # The same replicas ranked the same candidates; the facade's threshold decided.
    assert answer["threshold"] == 0.999 and answer["unknown"] is True and answer["person_id"] is None
    assert answer["candidates"][0] == lenient["candidates"][0]
