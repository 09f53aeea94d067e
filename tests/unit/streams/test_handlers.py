"""The pure handlers, without processors or Kafka."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ErrorCode, FacestreamError
from core.galleries import face_id_for
from core.identification import Identification, merge
from core.vectors import to_embedding
from index.base import PersonMatch
from schemas.events import BBox, FaceSearched, IdentifyQuery, ModelInfo, StageTimings
from streams.handlers.dead_letter import MAX_KEPT_BYTES, dead_letter
from streams.handlers.enroll import outcome_outputs
from streams.handlers.identify import reply_topic
from streams.handlers.search import answer
from tests.unit.db.factories import image_enrolled
from tests.unit.streams.factories import REPLY_TOPIC, settings

TOPICS = settings().topics
MODEL = ModelInfo(pack="fake", recognizer="fake", version="1", dim=4)


def query(*, threshold: float = 0.5, top_k: int = 5) -> IdentifyQuery:
    return IdentifyQuery(
        request_id="r1",
        embedding=to_embedding(np.array([1, 0, 0, 0], np.float32), MODEL),
        top_k=top_k,
        threshold=threshold,
        bbox=BBox(x=0, y=0, width=10, height=10),
        det_score=0.9,
        quality=0.8,
        timings=StageTimings(decode_ms=1.0, embed_ms=2.0),
    )


def matches(*pairs: tuple[str, float]) -> list[PersonMatch]:
    return [PersonMatch(person_id=p, similarity=s, face_id=f"face-{p}") for p, s in pairs]


def search(q: IdentifyQuery, found: list[PersonMatch]) -> FaceSearched:
    return answer(q, found, replica_id="rep-1", gallery_size=42, search_ms=3.5)


def decide(q: IdentifyQuery, found: list[PersonMatch]) -> Identification:
    return merge([search(q, found)])


def test_a_replica_ranks_and_carries_the_policy_without_deciding() -> None:
    result = search(query(threshold=0.5, top_k=5), matches(("alice", 0.8), ("bob", 0.3)))
    assert [c.person_id for c in result.candidates] == ["alice", "bob"]
    assert result.candidates[0].face_id == "face-alice"
    assert (result.threshold, result.top_k) == (0.5, 5)
    assert not hasattr(result, "unknown") and not hasattr(result, "person_id")
    assert (result.replica_id, result.gallery_size, result.model) == ("rep-1", 42, "fake/fake@1")
    assert result.timings.search_ms == 3.5
    assert result.timings.decode_ms == 1.0


def test_above_threshold_is_the_person() -> None:
    result = decide(query(threshold=0.5), matches(("alice", 0.8), ("bob", 0.3)))
    assert (result.person_id, result.similarity, result.unknown) == ("alice", 0.8, False)


def test_exactly_at_threshold_is_known() -> None:
    assert not decide(query(threshold=0.5), matches(("alice", 0.5))).unknown


def test_below_threshold_is_unknown_with_candidates() -> None:
    result = decide(query(threshold=0.5), matches(("alice", 0.49), ("bob", 0.1)))
    assert result.unknown
    assert result.person_id is None
    assert result.similarity == 0.49
    assert [c.person_id for c in result.candidates] == ["alice", "bob"]


def test_empty_gallery_is_unknown_without_candidates() -> None:
    result = decide(query(), [])
    assert result.unknown
    assert (result.person_id, result.similarity, result.candidates) == (None, None, [])


def test_candidates_stay_sorted_and_cut_to_top_k() -> None:
    found = matches(("a", 0.9), ("b", 0.7), ("c", 0.5), ("d", 0.2))
    result = search(query(top_k=3), found)
    sims = [c.similarity for c in result.candidates]
    assert sims == sorted(sims, reverse=True)
    assert [c.person_id for c in result.candidates] == ["a", "b", "c"]


def test_negative_threshold_accepts_negative_similarity() -> None:
    assert decide(query(threshold=-0.5), matches(("a", -0.2))).person_id == "a"


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (REPLY_TOPIC, REPLY_TOPIC),
        (None, TOPICS.identify_results),
        ("", TOPICS.identify_results),
        (TOPICS.embeddings, TOPICS.identify_results),
        ("facestream.replies.v1.", TOPICS.identify_results),
        ("evil.facestream.replies.v1.x", TOPICS.identify_results),
    ],
)
def test_reply_topic(requested: str | None, expected: str) -> None:
    assert reply_topic(requested, TOPICS) == expected


def test_outcome_outputs_reply_only_to_reply_topics() -> None:
    outcome = image_enrolled(0, model="fake/fake@1")
    assert [o.topic for o in outcome_outputs(outcome, topics=TOPICS, correlation_id="c", reply_to=None)] == [
        TOPICS.enrollment_outcomes
    ]
    both = outcome_outputs(outcome, topics=TOPICS, correlation_id="c", reply_to=REPLY_TOPIC)
    assert [o.topic for o in both] == [TOPICS.enrollment_outcomes, REPLY_TOPIC]
    assert both[0].envelope is both[1].envelope
    hostile = outcome_outputs(outcome, topics=TOPICS, correlation_id="c", reply_to=TOPICS.embeddings)
    assert [o.topic for o in hostile] == [TOPICS.enrollment_outcomes]


def test_face_id_for_is_stable_and_distinguishes_persons() -> None:
    assert face_id_for("default", "a", "sha") == face_id_for("default", "a", "sha")
    assert face_id_for("default", "a", "sha") != face_id_for("default", "b", "sha")
    assert face_id_for("default", "a", "sha") != face_id_for("default", "a", "sha2")
    assert len(face_id_for("default", "a", "sha")) == 32
    # The same person id and photo in another gallery is another face.
    assert face_id_for("staff", "a", "sha") != face_id_for("default", "a", "sha")
    assert face_id_for("staff", "a", "sha") != face_id_for("watch", "a", "sha")


def test_dead_letter_keeps_coordinates_and_truncates() -> None:
    out = dead_letter(
        topic="t",
        partition=3,
        offset=99,
        key=b"\xffkey",
        value=b"x" * (MAX_KEPT_BYTES + 10),
        headers={"correlation_id": "c-1"},
        error=FacestreamError(ErrorCode.INVALID_MESSAGE, "bad"),
        stage="enroll",
        topics=TOPICS,
    )
    assert out.topic == TOPICS.dead_letter
    assert out.key == "t:3:99"
    letter = out.envelope.payload
    assert (letter.topic, letter.partition, letter.offset) == ("t", 3, 99)
    assert len(letter.value) == MAX_KEPT_BYTES
    assert letter.key.endswith("key")
    assert out.envelope.correlation_id == "c-1"


def test_dead_letter_without_value_or_correlation() -> None:
    out = dead_letter(
        topic="t",
        partition=0,
        offset=0,
        key=None,
        value=None,
        headers={},
        error=FacestreamError(ErrorCode.INVALID_MESSAGE, "record has no value"),
        stage="identify",
        topics=TOPICS,
    )
    assert out.envelope.payload.value == b""
    assert out.envelope.payload.key is None
    assert out.envelope.correlation_id
