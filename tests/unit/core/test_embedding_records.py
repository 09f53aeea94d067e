"""The embeddings topic's binary records: exact round trip, a fixed-offset vector, and poison
that is recognised as poison."""

from __future__ import annotations

import numpy as np
import pytest

from core import embedding_records
from core.errors import ErrorCode, FacestreamError
from core.kafka import decode, encode, peek_head
from core.vectors import to_embedding
from schemas.envelope import Envelope
from schemas.events import BBox, FaceEmbedded, IdentifyFace, ModelInfo
from streams.log_fold import PendingChanges

MODEL = ModelInfo(pack="p", recognizer="r", version="1", dim=8)


def fact(vector: np.ndarray | None = None, *, model: ModelInfo = MODEL) -> Envelope[FaceEmbedded]:
    v = np.arange(1, 9, dtype=np.float32) if vector is None else vector
    payload = FaceEmbedded(
        face_id="f" * 32,
        person_id="alice",
        enrollment_id="e1",
        embedding=to_embedding(v / np.linalg.norm(v) if vector is None else v, model),
        quality=0.8,
        det_score=0.9,
        bbox=BBox(x=1, y=2, width=3, height=4),
        content_hash="c" * 64,
    )
    return Envelope.wrap(payload, correlation_id="corr")


class Record:
    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> None:
        self.key, self.value, self.headers = b"f" * 32, value, headers or []
        self.topic, self.partition, self.offset = "t", 0, 0


HEADERS = [("person_id", b"alice"), ("model_id", MODEL.id.encode())]


def test_round_trip_is_exact_and_the_vector_sits_at_a_fixed_offset() -> None:
    envelope = fact()
    value = encode(envelope)
    assert value[:4] == b"FSE1"
    assert decode(value, FaceEmbedded) == envelope
    np.testing.assert_array_equal(
        embedding_records.vector(value), np.frombuffer(envelope.payload.embedding.vector_f32le, "<f4")
    )
    head = peek_head(value)
    assert head is not None and (head.type, head.correlation_id) == ("FaceEmbedded", "corr")


@pytest.mark.parametrize("cut", [3, 11, 20, -1])
def test_a_truncated_record_is_an_invalid_message(cut: int) -> None:
    with pytest.raises(FacestreamError) as info:
        decode(encode(fact())[:cut], FaceEmbedded)
    assert info.value.code == ErrorCode.INVALID_MESSAGE


def test_a_binary_embedding_is_not_another_type() -> None:
    with pytest.raises(FacestreamError, match="binary FaceEmbedded"):
        decode(encode(fact()), IdentifyFace)


def test_the_fast_fold_reads_key_headers_and_vector() -> None:
    pending = PendingChanges()
    pending.fold(Record(encode(fact()), HEADERS), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
    ((face_id, (person, vector)),) = pending.upserts.items()
    assert (face_id, person) == ("f" * 32, "alice") and vector.shape == (8,)


def test_without_headers_the_fold_decodes_the_whole_record() -> None:
    pending = PendingChanges()
    pending.fold(Record(encode(fact())), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
    assert pending.upserts["f" * 32][0] == "alice"


@pytest.mark.parametrize(
    ("vector", "headers", "code"),
    [
        (np.full(8, np.nan, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),
        (np.zeros(8, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),
        (np.full(8, np.inf, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),
        (np.ones(4, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),  # wrong dim
        (
            np.ones(8, np.float32),
            [("person_id", b"alice"), ("model_id", b"other/m@1")],
            ErrorCode.MODEL_MISMATCH,
        ),
    ],
)
def test_poison_on_the_fast_path_is_dead_letter_material(
    vector: np.ndarray, headers: list[tuple[str, bytes]], code: ErrorCode
) -> None:
    with pytest.raises(FacestreamError) as info:
        PendingChanges().fold(Record(encode(fact(vector)), headers), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
    assert info.value.code == code
