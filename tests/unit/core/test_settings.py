"""Settings: defaults, environment overrides, validation, topic names."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import MiB, Settings


def make(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg, arg-type]


def test_environment_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESTREAM_THRESHOLD", "0.61")
    monkeypatch.setenv("FACESTREAM_TOP_K", "9")
    monkeypatch.setenv("FACESTREAM_API_KEYS", "k:admin")
    config = make()
    assert config.threshold == 0.61
    assert config.top_k == 9
    assert config.api_keys.get_secret_value() == "k:admin"
    assert "k:admin" not in repr(config)


def test_env_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("FACESTREAM_THRESHOLD=0.2\nFACESTREAM_TOPIC_PREFIX=fromfile\n")
    monkeypatch.setenv("FACESTREAM_THRESHOLD", "0.3")
    config = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert config.threshold == 0.3
    assert config.topic_prefix == "fromfile"


@pytest.mark.parametrize(
    ("name", "value"),
    [("THRESHOLD", "1.5"), ("TOP_K", "0"), ("TOP_K", "101"), ("DEVICE", "tpu"), ("MULTI_FACE_POLICY", "any")],
)
def test_invalid_environment_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"FACESTREAM_{name}", value)
    with pytest.raises(ValidationError):
        make()


def test_settings_are_frozen() -> None:
    config = make()
    with pytest.raises(ValidationError):
        config.threshold = 0.1  # type: ignore[misc]


def test_topic_names_carry_prefix_and_version() -> None:
    topics = make(topic_prefix="acme").topics
    names = [
        topics.enroll_requests,
        topics.identify_requests,
        topics.embeddings,
        topics.identify_queries,
        topics.identify_results,
        topics.enrollment_outcomes,
        topics.replica_status,
        topics.dead_letter,
    ]
    assert len(set(names)) == len(names)
    assert all(n.startswith("acme.") and ".v1" in n for n in names)
    assert topics.replies("api-1") == "acme.replies.v1.api-1"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("facestream.replies.v1.api-1", True),
        ("facestream.replies.v1.", False),
        ("facestream.replies.v1", False),
        ("facestream.face.embeddings.v1", False),
        ("x.facestream.replies.v1.api", False),
        ("", False),
        (None, False),
    ],
)
def test_is_reply_topic(name: str | None, expected: bool) -> None:
    assert make().topics.is_reply_topic(name) is expected


def test_max_message_bytes_fits_a_base64_image() -> None:
    config = make(max_image_bytes=15 * MiB)
    assert config.max_message_bytes >= -(-15 * MiB // 3) * 4
