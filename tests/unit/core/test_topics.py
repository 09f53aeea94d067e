"""Topic specs: explicit configs, never broker defaults."""

from __future__ import annotations

import base64

from core.settings import MiB, Settings
from core.topics import reply_topic_spec, topic_specs


def specs(**overrides: object) -> dict[str, dict[str, str]]:
    config = Settings(_env_file=None, **overrides)  # type: ignore[call-arg, arg-type]
    return {s.name: s.configs for s in topic_specs(config)}


def test_every_topic_has_a_spec() -> None:
    config = Settings(_env_file=None)  # type: ignore[call-arg]
    t = config.topics
    names = [s.name for s in topic_specs(config)]
    assert sorted(names) == sorted(
        [
            t.enroll_requests,
            t.identify_requests,
            t.embeddings,
            t.identify_queries,
            t.identify_results,
            t.enrollment_outcomes,
            t.replica_status,
            t.galleries,
            t.erasure_requests,
            t.erasures,
            t.audit,
            t.enrollment_images,
            t.dead_letter,
        ]
    )
    assert all(s.partitions >= 1 for s in topic_specs(config))


def test_embeddings_and_status_are_compacted() -> None:
    configs = specs()
    assert configs["facestream.face.embeddings.v1"]["cleanup.policy"] == "compact"
    assert configs["facestream.replica.status.v1"]["cleanup.policy"] == "compact"
    for name in ("facestream.enroll.requests.v1", "facestream.identify.requests.v1"):
        assert configs[name].get("cleanup.policy", "delete") == "delete"
        assert "retention.ms" in configs[name]


def test_request_topics_hold_a_base64_encoded_max_image() -> None:
    image = 15 * MiB
    envelope = len(base64.b64encode(b"\0" * image)) + 4096  # plus the JSON around it
    configs = specs(max_image_bytes=image)
    for name in (
        "facestream.enroll.requests.v1",
        "facestream.identify.requests.v1",
        "facestream.deadletter.v1",
    ):
        assert int(configs[name]["max.message.bytes"]) >= envelope


def test_embedding_records_fit() -> None:
    # A 512-d float32 vector base64-encoded inside an envelope is a few KiB.
    assert int(specs()["facestream.face.embeddings.v1"]["max.message.bytes"]) >= 64 * 1024


def test_reply_topic_spec() -> None:
    config = Settings(_env_file=None, instance_id="api-9")  # type: ignore[call-arg]
    spec = reply_topic_spec(config)
    assert spec.name == "facestream.replies.v1.api-9"
    assert config.topics.is_reply_topic(spec.name)
    assert spec.partitions == 1
