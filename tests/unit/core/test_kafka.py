"""The envelope codec and header helpers (no broker)."""

from __future__ import annotations

import json

import pytest

from core.errors import HTTP_STATUS, ErrorCode, FacestreamError
from core.kafka import decode, encode, envelope_headers, header_map, key_bytes, key_text, peek_head
from schemas.envelope import Envelope
from schemas.events import EnrollFace, IdentifyFace


def command() -> Envelope[EnrollFace]:
    payload = EnrollFace(enrollment_id="e", person_id="p", image=b"\x00\xffbinary")
    return Envelope.wrap(payload, correlation_id="c-1")


def test_roundtrip_keeps_bytes() -> None:
    original = command()
    value = encode(original)
    # Binary: the image raw after the metadata, no base64.
    assert value[:4] == b"FSI1" and value.endswith(b"\x00\xffbinary")
    back = decode(value, EnrollFace)
    assert back == original
    assert back.payload.image == b"\x00\xffbinary"
    head = peek_head(value)
    assert head is not None and head.type == "EnrollFace"


def test_a_json_command_with_a_base64_image_is_still_read() -> None:
    """What an edge box may produce."""
    original = command()
    value = original.model_dump_json().encode()
    assert json.loads(value)["type"] == "EnrollFace"
    assert decode(value, EnrollFace) == original


@pytest.mark.parametrize("value", [b"FSI1", b"FSI1\xff\x00\x00\x00{}", b"FSI1\x02\x00\x00\x00[]img"])
def test_broken_binary_commands_are_invalid_messages(value: bytes) -> None:
    with pytest.raises(FacestreamError) as info:
        decode(value, EnrollFace)
    assert info.value.code == ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize(
    "value",
    [None, b"", b"not json", b"[]", b"{}", b"\xff\xfe", b'{"type": "EnrollFace"}'],
)
def test_malformed_values_are_invalid_messages(value: bytes | None) -> None:
    with pytest.raises(FacestreamError) as info:
        decode(value, EnrollFace)
    assert info.value.code is ErrorCode.INVALID_MESSAGE


def test_wrong_type_is_an_invalid_message() -> None:
    value = encode(command())
    with pytest.raises(FacestreamError) as info:
        decode(value, IdentifyFace)
    assert info.value.code is ErrorCode.INVALID_MESSAGE


def test_type_field_must_match_the_payload() -> None:
    data = json.loads(command().model_dump_json())
    data["type"] = "IdentifyFace"
    with pytest.raises(FacestreamError):
        decode(json.dumps(data).encode(), EnrollFace)


def test_peek_head() -> None:
    head = peek_head(encode(command()))
    assert head is not None and (head.type, head.correlation_id) == ("EnrollFace", "c-1")
    assert peek_head(None) is None
    assert peek_head(b"garbage") is None


def test_headers() -> None:
    headers = envelope_headers(command(), reply_to="facestream.replies.v1.x", request_id=None)
    assert header_map(headers) == {
        "event_type": "EnrollFace",
        "schema_version": "1",
        "correlation_id": "c-1",
        "reply_to": "facestream.replies.v1.x",
    }
    assert header_map(None) == {}
    assert header_map([("bad", b"\xff")]) == {"bad": "\ufffd"}
    assert key_bytes(None) is None and key_bytes("k") == b"k"


def test_a_key_names_an_id_only_as_utf8_without_nul() -> None:
    assert key_text(b"f\xc3\xa9") == "f\u00e9" and key_text(None) == key_text(b"") == ""
    for key in (b"f\xff", b"f\x00g"):
        with pytest.raises(FacestreamError) as caught:
            key_text(key)
        assert caught.value.code == ErrorCode.INVALID_MESSAGE


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert FacestreamError(ErrorCode.TIMEOUT, "x").http_status == 504


def test_producers_do_not_linger_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests, replies and audit records are on a client's critical path: no linger by default."""
    import core.kafka
    from core.settings import Settings

    monkeypatch.setattr(core.kafka, "AIOKafkaProducer", lambda **options: options)
    assert core.kafka.make_producer(Settings())["linger_ms"] == 0
    assert core.kafka.make_producer(Settings(kafka_linger_ms=5))["linger_ms"] == 5
    assert core.kafka.make_producer(Settings(), linger_ms=20)["linger_ms"] == 20
