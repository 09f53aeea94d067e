"""The galleries topic folded into a registry: defined, deleting, gone; the default always there."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.errors import ErrorCode, FacestreamError
from core.galleries import GalleryRegistry, default_gallery, face_id_for, gallery_header
from core.kafka import encode
from core.settings import Settings
from schemas.envelope import Envelope
from schemas.events import GalleryDefined, GalleryDeleted, IndexSpec


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def record(gallery: str, payload: GalleryDefined | GalleryDeleted | None) -> Record:
    value = encode(Envelope.wrap(payload, correlation_id="c")) if payload is not None else None
    return Record(gallery.encode(), value)


def registry() -> GalleryRegistry:
    return GalleryRegistry(default_gallery(Settings(_env_file=None)))  # type: ignore[call-arg]


def test_the_default_gallery_is_the_deployments_and_cannot_be_overwritten() -> None:
    galleries = registry()
    assert galleries.active("default").pack == "default"
    galleries.apply(record("default", GalleryDeleted(gallery="default", erasure_id="e", requested_by="k")))
    assert galleries.is_active("default")


def test_defined_deleting_gone_and_defined_again() -> None:
    galleries = registry()
    staff = GalleryDefined(
        gallery="staff", pack="default", threshold=0.6, index=IndexSpec(backend="faiss-ivfpq")
    )
    galleries.apply(record("staff", staff))
    assert galleries.active("staff") == staff
    assert [g.id for g in galleries.all()] == ["default", "staff"]
    galleries.apply(record("staff", GalleryDeleted(gallery="staff", erasure_id="e", requested_by="k")))
    with pytest.raises(FacestreamError) as info:
        galleries.active("staff")
    assert info.value.code is ErrorCode.GALLERY_DELETING
    galleries.apply(record("staff", None))
    with pytest.raises(FacestreamError) as info:
        galleries.active("staff")
    assert info.value.code is ErrorCode.UNKNOWN_GALLERY
    galleries.apply(record("staff", staff.model_copy(update={"threshold": 0.3})))
    assert galleries.active("staff").threshold == 0.3


def test_a_garbled_record_changes_nothing() -> None:
    galleries = registry()
    galleries.apply(Record(b"x", b"not json"))
    assert galleries.get("x") is None


def test_face_ids_and_headers_keep_the_default_gallery_as_it_was() -> None:
    assert gallery_header("default") is None and gallery_header("staff") == "staff"
    assert face_id_for("default", "alice", "h") != face_id_for("staff", "alice", "h")
