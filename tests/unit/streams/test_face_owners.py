"""The eraser's view of the embeddings log: whose faces, and below which positions."""

from __future__ import annotations

import pytest

from core.errors import FacestreamError
from streams.face_owners import FaceOwners
from tests.unit.streams.factories import FakeMessage

TOPIC = "facestream.face.embeddings.v1"


def placed(face: str, person: str, partition: int, offset: int) -> FakeMessage:
    return FakeMessage(TOPIC, partition, offset, face.encode(), b"{}", [("person_id", person.encode())])


def tombstone(face: str, partition: int, offset: int) -> FakeMessage:
    return FakeMessage(TOPIC, partition, offset, face.encode(), None)


def test_faces_below_the_barrier_are_the_persons_faces_before_the_erasure() -> None:
    owners = FaceOwners()
    for record in (placed("f1", "alice", 0, 3), placed("f2", "alice", 1, 8), placed("f3", "bob", 0, 4)):
        owners.apply(record)
    assert owners.faces_of("alice", below={0: 5, 1: 9}) == ["f1", "f2"]
    # f2 was written at or after the barrier on its partition: a later enrollment, kept.
    assert owners.faces_of("alice", below={0: 5, 1: 8}) == ["f1"]
    assert owners.faces_of("alice", below={0: 5}) == ["f1"]
    assert owners.faces_of("nobody", below={0: 99}) == []


def test_tombstones_and_rewrites_move_faces() -> None:
    owners = FaceOwners()
    owners.apply(placed("f1", "alice", 0, 1))
    owners.apply(tombstone("f1", 0, 2))
    assert owners.faces_of("alice", below={0: 99}) == [] and owners.owner_of("f1") is None
    owners.apply(placed("f1", "alice", 0, 3))
    owners.apply(placed("f1", "alice", 0, 6))  # the same face again: the later record counts
    assert owners.faces_of("alice", below={0: 5}) == []
    assert owners.owner_of("f1") == "alice" and len(owners) == 1


def test_a_record_without_a_header_is_read_from_its_value_and_garbage_raises() -> None:
    owners = FaceOwners()
    with pytest.raises(FacestreamError):
        owners.apply(FakeMessage(TOPIC, 0, 1, b"f9", b"not json"))
    assert owners.owner_of("f9") is None


@pytest.mark.parametrize("key", [b"f\xff", b"f\x00g"])
def test_a_key_that_cannot_be_a_face_id_raises(key: bytes) -> None:
    with pytest.raises(FacestreamError):
        FaceOwners().apply(FakeMessage(TOPIC, 0, 1, key, None))


def in_gallery(face: str, person: str, gallery: str, offset: int) -> FakeMessage:
    headers = [("person_id", person.encode()), ("gallery", gallery.encode())]
    return FakeMessage(TOPIC, 0, offset, face.encode(), b"{}", headers)


def test_the_same_person_id_in_two_galleries_is_two_people() -> None:
    owners = FaceOwners()
    owners.apply(placed("f1", "alice", 0, 1))
    owners.apply(in_gallery("f2", "alice", "staff", 2))
    owners.apply(in_gallery("f3", "bob", "staff", 3))
    assert owners.faces_of("alice", below={0: 9}) == ["f1"]
    assert owners.faces_of("alice", below={0: 9}, gallery="staff") == ["f2"]
    assert owners.faces_in("staff") == ["f2", "f3"]
    owners.apply(tombstone("f2", 0, 4))
    assert (
        owners.faces_in("staff") == ["f3"] and owners.faces_of("alice", below={0: 9}, gallery="staff") == []
    )
    placement = owners.placement_of("f3")
    assert placement is not None and placement.gallery == "staff"
