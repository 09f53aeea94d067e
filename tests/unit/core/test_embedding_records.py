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
from tests.unit.streams.galleries_factories import fse1

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
    assert value[:4] == b"FSE2"
    assert decode(value, FaceEmbedded) == envelope
    np.testing.assert_array_equal(
        embedding_records.vector(value), np.frombuffer(envelope.payload.embedding.vector_f32le, "<f4")
    )
    np.testing.assert_array_equal(
        np.frombuffer(value, "<f4", count=8, offset=16), embedding_records.vector(value)
    )
    assert embedding_records.ids(value) == embedding_records.Ids("alice", MODEL.id, "default")
    head = peek_head(value)
    assert head is not None and (head.type, head.correlation_id) == ("FaceEmbedded", "corr")


def test_a_gallery_travels_in_the_ids() -> None:
    envelope = fact()
    envelope = envelope.model_copy(
        update={"payload": envelope.payload.model_copy(update={"gallery": "branch-b"})}
    )
    assert embedding_records.ids(encode(envelope)) == embedding_records.Ids("alice", MODEL.id, "branch-b")


def test_records_of_the_first_binary_format_stay_readable() -> None:
    envelope = fact()
    value = fse1(envelope)
    assert decode(value, FaceEmbedded) == envelope
    assert embedding_records.ids(value) is None  # its ids are in its headers
    pending = PendingChanges()
    pending.fold(Record(value, HEADERS), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
    pending.fold(
        Record(fse1(fact(np.ones(8, np.float32) / np.sqrt(8))), []), model_id=MODEL.id, dim=MODEL.dim
    )  # type: ignore[arg-type]
    assert pending.upserts["f" * 32][0] == "alice"


def test_ids_that_disagree_with_the_metadata_are_an_invalid_message() -> None:
    value = encode(fact())
    forged = value.replace(b"alice\x00", b"mallo\x00", 1)
    with pytest.raises(FacestreamError, match="disagree") as info:
        decode(forged, FaceEmbedded)
    assert info.value.code == ErrorCode.INVALID_MESSAGE


def test_malformed_ids_are_an_invalid_message() -> None:
    value = encode(fact())
    broken = value.replace(b"alice\x00", b"alice\x01", 1)  # two separators where three belong
    with pytest.raises(FacestreamError, match="ids are malformed"):
        embedding_records.ids(broken)
    with pytest.raises(FacestreamError, match="ids are malformed"):
        PendingChanges().fold(Record(broken), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", [3, 11, 20, -1])
def test_a_truncated_record_is_an_invalid_message(cut: int) -> None:
    with pytest.raises(FacestreamError) as info:
        decode(encode(fact())[:cut], FaceEmbedded)
    assert info.value.code == ErrorCode.INVALID_MESSAGE


def test_a_binary_embedding_is_not_another_type() -> None:
    with pytest.raises(FacestreamError, match="binary FaceEmbedded"):
        decode(encode(fact()), IdentifyFace)


def test_the_fast_fold_reads_key_ids_and_vector_without_headers() -> None:
    pending = PendingChanges()
    pending.fold(Record(encode(fact())), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
    ((face_id, (person, vector)),) = pending.upserts.items()
    assert (face_id, person) == ("f" * 32, "alice") and vector.shape == (8,)


@pytest.mark.parametrize(
    ("vector", "headers", "code"),
    [
        (np.full(8, np.nan, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),
        (np.zeros(8, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),
        (np.full(8, np.inf, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),
        (np.ones(4, np.float32), HEADERS, ErrorCode.INVALID_MESSAGE),  # wrong dim
    ],
)
@pytest.mark.parametrize("first_format", [False, True], ids=["fse2", "fse1"])
def test_poison_on_the_fast_path_is_dead_letter_material(
    vector: np.ndarray, headers: list[tuple[str, bytes]], code: ErrorCode, first_format: bool
) -> None:
    value = (fse1 if first_format else encode)(fact(vector))
    with pytest.raises(FacestreamError) as info:
        PendingChanges().fold(Record(value, headers), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
    assert info.value.code == code


def test_another_model_on_the_fast_path_is_a_model_mismatch() -> None:
    other = ModelInfo(pack="other", recognizer="m", version="1", dim=8)
    value = encode(fact(np.ones(8, np.float32) / np.sqrt(8), model=other))
    legacy = fse1(fact(np.ones(8, np.float32) / np.sqrt(8)))
    for record in (Record(value), Record(legacy, [("person_id", b"alice"), ("model_id", other.id.encode())])):
        with pytest.raises(FacestreamError) as info:
            PendingChanges().fold(record, model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
        assert info.value.code == ErrorCode.MODEL_MISMATCH
