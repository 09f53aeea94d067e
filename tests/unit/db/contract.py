"""One behaviour suite for the projection, run on every backend (SQLite here, PostgreSQL in
tests/integration/db). A subclass provides the `sessions` fixture: an async_sessionmaker on an
empty, migrated database."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import ErrorCode, FacestreamError
from db.models import ProcessedEvent
from db.projection import (
    apply_face_embedded,
    apply_face_removed,
    apply_gallery_defined,
    apply_gallery_deleted,
    apply_gallery_removed,
    apply_image_enrolled,
    apply_person_removed,
    prune_processed_events,
    record_event_id,
)
from db.queries import (
    count_faces,
    count_persons,
    get_enrollment,
    get_face,
    get_gallery,
    get_person,
    list_galleries,
    list_persons,
)
from schemas.events import BBox, Embedding, ModelInfo
from tests.unit.db.factories import (
    GALLERIES_TOPIC,
    MODEL,
    OUTCOMES_TOPIC,
    TOPIC,
    at,
    face_embedded,
    gallery_defined,
    gallery_deleted,
    image_enrolled,
    vector,
)


async def face_ids_of_person(session: Any, *, person_id: str, gallery: str = "default") -> list[str]:
    """The person's face ids, sorted, through the query the erasure route uses."""
    person = await get_person(session, person_id=person_id, gallery=gallery)
    return sorted(f.face_id for f in person.faces) if person else []


Sessions = async_sessionmaker[AsyncSession]


async def committed(sessions: Sessions, apply: Callable[..., Awaitable[bool]], **kwargs: Any) -> bool:
    async with sessions() as session:
        applied = await apply(session, **kwargs)
        await session.commit()
    return applied


async def embed(sessions: Sessions, event_id: str, offset: int, **fact: Any) -> bool:
    return await committed(
        sessions,
        apply_face_embedded,
        event_id=event_id,
        fact=face_embedded(**fact),
        topic=TOPIC,
        partition=0,
        offset=offset,
        at=at(offset),
    )


async def tombstone(sessions: Sessions, face_id: str, offset: int) -> bool:
    return await committed(
        sessions,
        apply_face_removed,
        event_id=record_event_id(TOPIC, 0, offset),
        face_id=face_id,
        topic=TOPIC,
        partition=0,
        offset=offset,
        at=at(offset),
    )


async def outcome(sessions: Sessions, event_id: str, offset: int, **fact: Any) -> bool:
    return await committed(
        sessions,
        apply_image_enrolled,
        event_id=event_id,
        fact=image_enrolled(**fact),
        topic=OUTCOMES_TOPIC,
        partition=1,
        offset=offset,
        at=at(offset),
    )


async def define(sessions: Sessions, event_id: str, offset: int, **fact: Any) -> bool:
    return await committed(
        sessions,
        apply_gallery_defined,
        event_id=event_id,
        fact=gallery_defined(**fact),
        topic=GALLERIES_TOPIC,
        partition=0,
        offset=offset,
        at=at(offset),
    )


async def delete_gallery(sessions: Sessions, event_id: str, offset: int, gallery: str) -> bool:
    return await committed(
        sessions,
        apply_gallery_deleted,
        event_id=event_id,
        fact=gallery_deleted(gallery),
        topic=GALLERIES_TOPIC,
        partition=0,
        offset=offset,
        at=at(offset),
    )


async def remove_gallery(sessions: Sessions, gallery: str, offset: int) -> bool:
    return await committed(
        sessions,
        apply_gallery_removed,
        event_id=record_event_id(GALLERIES_TOPIC, 0, offset),
        gallery=gallery,
        topic=GALLERIES_TOPIC,
        partition=0,
        offset=offset,
    )


async def read(sessions: Sessions, query: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
    async with sessions() as session:
        return await query(session, **kwargs)


class ProjectionContract:
    # --- faces and persons

    async def test_face_embedded_creates_person_and_face(self, sessions: Sessions) -> None:
        assert await embed(sessions, "ev1", 10, face_id="f1", person_id="alice")

        face = await read(sessions, get_face, face_id="f1")
        assert face is not None
        assert face.person_id == "alice"
        assert face.embedding == Embedding(model=MODEL, vector_f32le=vector(1.0, 0.0, 0.0, 0.0))
        assert face.model_id == "default/fr_feature@1"
        assert face.bbox == BBox(x=1.0, y=2.0, width=30.0, height=40.0)
        assert (face.quality, face.det_score) == (0.9, 0.95)
        assert (face.content_hash, face.filename, face.image_path) == ("sha256:f1", "f1.jpg", None)
        assert (face.source_topic, face.source_partition, face.source_offset) == (TOPIC, 0, 10)
        assert face.created_at == at(10)
        assert face.created_at.tzinfo is not None

        person = await read(sessions, get_person, person_id="alice")
        assert person is not None
        assert person.face_count == 1
        assert [f.face_id for f in person.faces] == ["f1"]
        assert person.faces[0].model_id == "default/fr_feature@1"
        assert person.faces[0].bbox == face.bbox
        assert person.metadata == {}
        assert person.created_at == person.updated_at == at(10)

    async def test_same_event_twice_is_applied_once(self, sessions: Sessions) -> None:
        assert await embed(sessions, "ev1", 10, face_id="f1")
        assert not await embed(sessions, "ev1", 10, face_id="f1")
        # even a changed body under the same event id is skipped
        assert not await embed(sessions, "ev1", 10, face_id="f2")

        assert await read(sessions, count_faces) == 1
        assert await read(sessions, face_ids_of_person, person_id="p1") == ["f1"]
        async with sessions() as session:
            ledger = await session.scalar(select(func.count()).select_from(ProcessedEvent))
        assert ledger == 1

    async def test_duplicates_within_one_transaction(self, sessions: Sessions) -> None:
        async with sessions() as session:
            for _ in range(2):
                await apply_face_embedded(
                    session, event_id="ev1", fact=face_embedded(), topic=TOPIC,
                    partition=0, offset=1,
                )  # fmt: skip
            await session.commit()
        assert await read(sessions, count_faces) == 1

    async def test_same_face_new_event_upserts(self, sessions: Sessions) -> None:
        assert await embed(sessions, "ev1", 10, face_id="f1", quality=0.5)
        assert await embed(sessions, "ev2", 20, face_id="f1", quality=0.7)

        face = await read(sessions, get_face, face_id="f1")
        assert face.quality == 0.7
        assert face.source_offset == 20
        assert (face.created_at, face.updated_at) == (at(10), at(20))
        person = await read(sessions, get_person, person_id="p1")
        assert (person.face_count, person.created_at, person.updated_at) == (1, at(10), at(20))

    async def test_rolled_back_event_is_applied_again(self, sessions: Sessions) -> None:
        async with sessions() as session:
            assert await apply_face_embedded(
                session, event_id="ev1", fact=face_embedded(), topic=TOPIC, partition=0, offset=1
            )
            await session.rollback()
        assert await embed(sessions, "ev1", 1)
        assert await read(sessions, count_faces) == 1

    async def test_wrong_embedding_length_is_rejected(self, sessions: Sessions) -> None:
        bad = Embedding(model=ModelInfo(pack="p", recognizer="r", version="1", dim=512),
                        vector_f32le=vector(1.0, 0.0))  # fmt: skip
        with pytest.raises(FacestreamError) as caught:
            await embed(sessions, "ev1", 1, embedding=bad)
        assert caught.value.code is ErrorCode.INVALID_MESSAGE
        assert await read(sessions, count_faces) == 0

    async def test_512d_embedding_round_trips_exactly(self, sessions: Sessions) -> None:
        values = [i / 512 for i in range(512)]
        model = ModelInfo(pack="default", recognizer="fr", version="1", dim=512)
        embedding = Embedding(model=model, vector_f32le=struct.pack("<512f", *values))
        assert await embed(sessions, "ev1", 1, embedding=embedding)
        face = await read(sessions, get_face, face_id="f1")
        assert face.embedding == embedding

    # --- removal

    async def test_tombstone_removes_face_and_keeps_person(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 10, face_id="f1")
        await embed(sessions, "ev2", 11, face_id="f2")
        assert await tombstone(sessions, "f1", 12)
        assert not await tombstone(sessions, "f1", 12)  # the same tombstone, re-delivered

        assert await read(sessions, get_face, face_id="f1") is None
        assert await read(sessions, face_ids_of_person, person_id="p1") == ["f2"]
        assert await tombstone(sessions, "f2", 13)
        person = await read(sessions, get_person, person_id="p1")
        assert person is not None
        assert (person.face_count, person.faces, person.updated_at) == (0, (), at(13))

    async def test_tombstone_of_unknown_face_is_recorded(self, sessions: Sessions) -> None:
        assert await tombstone(sessions, "nobody", 5)
        assert not await tombstone(sessions, "nobody", 5)
        assert await read(sessions, count_persons) == 0

    async def test_face_readded_after_tombstone(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 1, face_id="f1")
        await tombstone(sessions, "f1", 2)
        assert await embed(sessions, "ev3", 3, face_id="f1")
        assert await read(sessions, face_ids_of_person, person_id="p1") == ["f1"]

    async def test_person_removed_erases_faces_and_enrollments(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 1, face_id="f1", person_id="alice")
        await embed(sessions, "ev2", 2, face_id="f2", person_id="alice")
        await embed(sessions, "ev3", 3, face_id="f3", person_id="bob")
        await outcome(sessions, "o1", 1, image_index=0, person_id="alice", enrollment_id="ea")
        await outcome(sessions, "o2", 2, image_index=0, person_id="bob", enrollment_id="eb")

        removal = {"event_id": "rm1", "person_id": "alice", "topic": "t", "partition": 0,
                   "offset": 9}  # fmt: skip
        assert await committed(sessions, apply_person_removed, **removal)
        assert not await committed(sessions, apply_person_removed, **removal)

        assert await read(sessions, get_person, person_id="alice") is None
        assert await read(sessions, face_ids_of_person, person_id="alice") == []
        assert await read(sessions, get_enrollment, enrollment_id="ea") is None
        assert await read(sessions, get_enrollment, enrollment_id="eb") is not None
        assert await read(sessions, count_faces) == 1
        assert await read(sessions, count_persons) == 1

    async def test_erasure_with_a_barrier_keeps_what_was_enrolled_after_it(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 1, face_id="f1", person_id="alice")
        await embed(sessions, "ev2", 5, face_id="f2", person_id="alice")
        await outcome(sessions, "o1", 1, image_index=0, person_id="alice", enrollment_id="ea", image_count=1)
        await outcome(
            sessions,
            "o2",
            6,
            image_index=0,
            person_id="alice",
            enrollment_id="eb",
            image_count=1,
            face_id="f2",
        )
        erased = {"event_id": "rm1", "person_id": "alice", "topic": "t", "partition": 0, "offset": 9,
                  "erasure_id": "x1", "barrier": {0: 3}, "outcomes_barrier": {1: 2}}  # fmt: skip
        assert await committed(sessions, apply_person_removed, **erased)
        assert await read(sessions, face_ids_of_person, person_id="alice") == ["f2"]
        assert await read(sessions, get_enrollment, enrollment_id="ea") is None
        assert await read(sessions, get_enrollment, enrollment_id="eb") is not None
        assert await read(sessions, get_person, person_id="alice") is not None

    async def test_records_below_the_barrier_arriving_late_are_never_projected(
        self, sessions: Sessions
    ) -> None:
        erased = {"event_id": "rm1", "person_id": "alice", "topic": "t", "partition": 0, "offset": 9,
                  "erasure_id": "x1", "barrier": {0: 10}, "outcomes_barrier": {1: 10}}  # fmt: skip
        assert await committed(sessions, apply_person_removed, **erased)
        # The projection was behind: the erased person's face and outcome come after the fact.
        assert not await embed(sessions, "ev1", 4, face_id="f1", person_id="alice")
        assert not await outcome(sessions, "o1", 4, image_index=0, person_id="alice", enrollment_id="ea")
        assert await read(sessions, get_person, person_id="alice") is None
        assert await read(sessions, get_enrollment, enrollment_id="ea") is None
        # Enrolled again after the erasure: projected as usual.
        assert await embed(sessions, "ev2", 12, face_id="f2", person_id="alice")
        assert await read(sessions, face_ids_of_person, person_id="alice") == ["f2"]
        # A second erasure never moves a barrier back.
        again = {**erased, "event_id": "rm2", "offset": 11, "barrier": {0: 2}, "outcomes_barrier": {}}
        assert await committed(sessions, apply_person_removed, **again)
        assert not await embed(sessions, "ev3", 6, face_id="f3", person_id="alice")

    # --- enrollments

    async def test_enrollment_outcomes_merge_in_any_order(self, sessions: Sessions) -> None:
        assert await outcome(sessions, "o2", 1, image_index=2, status="rejected")
        enrollment = await read(sessions, get_enrollment, enrollment_id="e1")
        assert (enrollment.status, enrollment.accepted_count, enrollment.rejected_count) == (
            "pending", 0, 1,
        )  # fmt: skip
        assert enrollment.missing_indexes == (0, 1)

        assert await outcome(sessions, "o0", 2, image_index=0)
        assert not await outcome(sessions, "o0", 2, image_index=0)  # re-delivered
        enrollment = await read(sessions, get_enrollment, enrollment_id="e1")
        assert (enrollment.status, enrollment.accepted_count, enrollment.rejected_count) == (
            "pending", 1, 1,
        )  # fmt: skip

        assert await outcome(sessions, "o1", 3, image_index=1)
        enrollment = await read(sessions, get_enrollment, enrollment_id="e1")
        assert enrollment.complete
        assert (enrollment.image_count, enrollment.accepted_count, enrollment.rejected_count) == (
            3, 2, 1,
        )  # fmt: skip
        assert [o.image_index for o in enrollment.outcomes] == [0, 1, 2]
        assert [o.status for o in enrollment.outcomes] == ["accepted", "accepted", "rejected"]
        first, _, rejected = enrollment.outcomes
        assert (first.face_id, first.filename, first.quality) == ("f0", "img0.jpg", 0.8)
        assert first.bbox == BBox(x=0, y=0, width=10, height=10)
        assert (rejected.reason, rejected.face_id, rejected.bbox) == ("no_face", None, None)
        assert (enrollment.created_at, enrollment.updated_at) == (at(1), at(3))
        assert enrollment.created_at.tzinfo == UTC

    async def test_retried_image_replaces_its_outcome(self, sessions: Sessions) -> None:
        await outcome(sessions, "a", 1, image_index=0, image_count=1, status="rejected")
        await outcome(sessions, "b", 2, image_index=0, image_count=1, status="accepted")
        enrollment = await read(sessions, get_enrollment, enrollment_id="e1")
        assert (enrollment.accepted_count, enrollment.rejected_count) == (1, 0)
        assert enrollment.complete

    async def test_enrollment_outcomes_in_one_transaction(self, sessions: Sessions) -> None:
        async with sessions() as session:
            for i in range(3):
                await apply_image_enrolled(
                    session, event_id=f"o{i}", fact=image_enrolled(i), topic=OUTCOMES_TOPIC,
                    partition=0, offset=i,
                )  # fmt: skip
            await session.commit()
        enrollment = await read(sessions, get_enrollment, enrollment_id="e1")
        assert (enrollment.status, enrollment.accepted_count) == ("complete", 3)

    async def test_image_index_out_of_range_is_rejected(self, sessions: Sessions) -> None:
        with pytest.raises(FacestreamError) as caught:
            await outcome(sessions, "o", 1, image_index=3, image_count=3)
        assert caught.value.code is ErrorCode.INVALID_MESSAGE

    # --- queries

    async def test_list_and_count_persons(self, sessions: Sessions) -> None:
        for n, person_id in enumerate(["carol", "alice", "bob"]):
            await embed(sessions, f"ev{n}", n, face_id=f"{person_id}-1", person_id=person_id)
        await embed(sessions, "ev9", 9, face_id="alice-2", person_id="alice")

        page = await read(sessions, list_persons, limit=2, offset=0)
        assert [(p.person_id, p.face_count) for p in page] == [("alice", 2), ("bob", 1)]
        page = await read(sessions, list_persons, limit=2, offset=2)
        assert [(p.person_id, p.face_count) for p in page] == [("carol", 1)]
        assert await read(sessions, list_persons, limit=10, offset=3) == []
        assert await read(sessions, count_persons) == 3
        assert await read(sessions, count_faces) == 4
        assert await read(sessions, count_faces, person_id="alice") == 2
        assert await read(sessions, count_faces, model_id=MODEL.id) == 4
        assert await read(sessions, count_faces, model_id="other/x@1") == 0

    async def test_person_with_no_faces_is_listed(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 1)
        await tombstone(sessions, "f1", 2)
        assert [(p.person_id, p.face_count) for p in await read(sessions, list_persons)] == [("p1", 0)]

    async def test_unknown_ids_read_as_none(self, sessions: Sessions) -> None:
        assert await read(sessions, get_person, person_id="nobody") is None
        assert await read(sessions, get_face, face_id="nothing") is None
        assert await read(sessions, get_enrollment, enrollment_id="never") is None
        assert await read(sessions, face_ids_of_person, person_id="nobody") == []
        assert await read(sessions, count_faces) == 0
        assert await read(sessions, list_persons) == []

    async def test_reads_see_writes_of_the_same_session(self, sessions: Sessions) -> None:
        async with sessions() as session:
            await apply_face_embedded(
                session, event_id="ev1", fact=face_embedded(quality=0.1), topic=TOPIC,
                partition=0, offset=1,
            )  # fmt: skip
            face = await get_face(session, face_id="f1")
            assert face is not None
            assert face.quality == 0.1
            await apply_face_embedded(
                session, event_id="ev2", fact=face_embedded(quality=0.2), topic=TOPIC,
                partition=0, offset=2,
            )  # fmt: skip
            face = await get_face(session, face_id="f1")
            assert face is not None
            assert face.quality == 0.2
            await apply_face_removed(session, event_id="t", face_id="f1", topic=TOPIC, partition=0, offset=3)
            assert await get_face(session, face_id="f1") is None
            person = await get_person(session, person_id="p1")
            assert person is not None
            assert person.face_count == 0
            await session.commit()

    # --- the ledger

    async def test_prune_processed_events(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 1)
        await embed(sessions, "ev2", 2, face_id="f2")
        async with sessions() as session:
            long_ago = datetime(2000, 1, 1, tzinfo=UTC)
            assert await prune_processed_events(session, before=long_ago) == 0
            tomorrow = datetime.now(UTC) + timedelta(days=1)
            assert await prune_processed_events(session, before=tomorrow) == 2
            await session.commit()
        assert await embed(sessions, "ev1", 1)  # forgotten: applied again, still one face
        assert await read(sessions, count_faces) == 2

    # --- galleries

    async def test_the_default_gallery_is_always_there(self, sessions: Sessions) -> None:
        galleries = await read(sessions, list_galleries)
        assert [(g.gallery, g.state, g.pack, g.person_count, g.face_count) for g in galleries] == [
            ("default", "active", "", 0, 0)
        ]
        assert galleries[0].created_at.tzinfo is not None
        # Records of the galleries topic about the default gallery change nothing.
        assert await define(sessions, "d1", 1, gallery="default", pack="other")
        assert await delete_gallery(sessions, "d2", 2, "default")
        assert await remove_gallery(sessions, "default", 3)
        default = await read(sessions, get_gallery, gallery="default")
        assert (default.state, default.pack) == ("active", "")

    async def test_gallery_defined_upserts_its_row(self, sessions: Sessions) -> None:
        assert await define(sessions, "g1", 1)
        assert not await define(sessions, "g1", 1)  # re-delivered
        vip = await read(sessions, get_gallery, gallery="vip")
        assert vip is not None
        assert (vip.description, vip.pack, vip.threshold) == ("the vip gallery", "buffalo_l", 0.42)
        assert (vip.quality_filter_enroll, vip.quality_filter_identify) == ("high", "none")
        assert (vip.index_backend, dict(vip.index_options)) == ("faiss-ivfpq", {"nlist": 64, "m": 8})
        assert (vip.generation, vip.state, vip.created_by) == (1, "active", "admin")
        assert vip.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert vip.updated_at == at(1)

        assert await define(sessions, "g2", 5, generation=2, threshold=None, created_by="other")
        vip = await read(sessions, get_gallery, gallery="vip")
        assert (vip.generation, vip.threshold, vip.updated_at) == (2, None, at(5))
        assert vip.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert [g.gallery for g in await read(sessions, list_galleries)] == ["default", "vip"]
        assert await read(sessions, get_gallery, gallery="nowhere") is None

    async def test_same_person_id_in_two_galleries_is_two_people(self, sessions: Sessions) -> None:
        await define(sessions, "g1", 1)
        assert await embed(sessions, "ev1", 10, face_id="fd1", person_id="alice")
        assert await embed(sessions, "ev2", 11, face_id="fv1", person_id="alice", gallery="vip")
        assert await embed(sessions, "ev3", 12, face_id="fv2", person_id="alice", gallery="vip")
        assert await embed(sessions, "ev4", 13, face_id="fv3", person_id="bob", gallery="vip")

        default = await read(sessions, get_person, person_id="alice")
        vip = await read(sessions, get_person, person_id="alice", gallery="vip")
        assert (default.gallery, [f.face_id for f in default.faces]) == ("default", ["fd1"])
        assert (vip.gallery, [f.face_id for f in vip.faces]) == ("vip", ["fv1", "fv2"])
        assert await read(sessions, get_person, person_id="bob") is None
        assert [(p.person_id, p.face_count) for p in await read(sessions, list_persons)] == [("alice", 1)]
        assert [(p.person_id, p.face_count) for p in await read(sessions, list_persons, gallery="vip")] == [
            ("alice", 2),
            ("bob", 1),
        ]
        assert (await read(sessions, count_persons), await read(sessions, count_faces)) == (1, 1)
        assert await read(sessions, count_persons, gallery="vip") == 2
        assert await read(sessions, count_faces, gallery="vip", person_id="alice") == 2
        assert (
            await read(sessions, count_persons, gallery=None),
            await read(sessions, count_faces, gallery=None),
        ) == (
            3,
            4,
        )
        face = await read(sessions, get_face, face_id="fv1", gallery="vip")
        assert (face.gallery, face.person_id) == ("vip", "alice")
        assert await read(sessions, get_face, face_id="fv1") is None  # not a face of the default gallery
        counts = {g.gallery: (g.person_count, g.face_count) for g in await read(sessions, list_galleries)}
        assert counts == {"default": (1, 1), "vip": (2, 3)}
        vip_gallery = await read(sessions, get_gallery, gallery="vip")
        assert (vip_gallery.person_count, vip_gallery.face_count) == (2, 3)

    async def test_a_tombstone_in_one_gallery_leaves_the_other(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 1, face_id="fd1", person_id="alice")
        await embed(sessions, "ev2", 2, face_id="fv1", person_id="alice", gallery="vip")
        assert await tombstone(sessions, "fv1", 3)
        assert await read(sessions, face_ids_of_person, person_id="alice") == ["fd1"]
        assert await read(sessions, face_ids_of_person, person_id="alice", gallery="vip") == []
        default = await read(sessions, get_person, person_id="alice")
        assert default.updated_at == at(1)  # only the vip person was touched

    async def test_erasure_in_one_gallery_leaves_the_other(self, sessions: Sessions) -> None:
        await define(sessions, "g1", 1)
        await embed(sessions, "ev1", 1, face_id="fd1", person_id="alice")
        await embed(sessions, "ev2", 2, face_id="fv1", person_id="alice", gallery="vip")
        await outcome(sessions, "o1", 1, image_index=0, person_id="alice", enrollment_id="ed", image_count=1)
        await outcome(
            sessions,
            "o2",
            2,
            image_index=0,
            person_id="alice",
            enrollment_id="ev",
            image_count=1,
            gallery="vip",
        )
        erased = {"event_id": "rm1", "person_id": "alice", "gallery": "vip", "topic": "t",
                  "partition": 0, "offset": 9, "erasure_id": "x1", "barrier": {0: 10},
                  "outcomes_barrier": {1: 10}}  # fmt: skip
        assert await committed(sessions, apply_person_removed, **erased)

        assert await read(sessions, get_person, person_id="alice", gallery="vip") is None
        assert await read(sessions, get_enrollment, enrollment_id="ev", gallery="vip") is None
        assert await read(sessions, face_ids_of_person, person_id="alice") == ["fd1"]
        enrollment = await read(sessions, get_enrollment, enrollment_id="ed")
        assert (enrollment.gallery, enrollment.person_id) == ("default", "alice")
        # The barrier holds in the vip gallery only: a late default-gallery face still lands.
        assert not await embed(sessions, "ev3", 4, face_id="fv2", person_id="alice", gallery="vip")
        assert await embed(sessions, "ev4", 5, face_id="fd2", person_id="alice")
        assert await read(sessions, face_ids_of_person, person_id="alice") == ["fd1", "fd2"]
        # A barrier-less erasure (from before barriers) of the default person leaves vip alone.
        await embed(sessions, "ev5", 12, face_id="fv3", person_id="alice", gallery="vip")
        plain = {"event_id": "rm2", "person_id": "alice", "topic": "t", "partition": 0, "offset": 10}
        assert await committed(sessions, apply_person_removed, **plain)
        assert await read(sessions, get_person, person_id="alice") is None
        assert await read(sessions, face_ids_of_person, person_id="alice", gallery="vip") == ["fv3"]

    async def test_enrollments_are_read_in_their_gallery(self, sessions: Sessions) -> None:
        assert await outcome(sessions, "o1", 1, image_index=0, image_count=1, gallery="vip")
        assert await read(sessions, get_enrollment, enrollment_id="e1") is None
        enrollment = await read(sessions, get_enrollment, enrollment_id="e1", gallery="vip")
        assert (enrollment.gallery, enrollment.status) == ("vip", "complete")

    async def test_gallery_deletion_removes_its_rows_only(self, sessions: Sessions) -> None:
        await define(sessions, "g1", 1)
        await define(sessions, "g2", 2, gallery="lobby")
        for gallery in ("default", "vip", "lobby"):
            await embed(
                sessions, f"ev-{gallery}", 3, face_id=f"f-{gallery}", person_id="alice", gallery=gallery
            )
            await outcome(
                sessions,
                f"o-{gallery}",
                3,
                image_index=0,
                image_count=1,
                enrollment_id=f"e-{gallery}",
                gallery=gallery,
            )
        barrier = {"topic": "t", "partition": 0, "offset": 9, "erasure_id": "x", "barrier": {0: 1},
                   "outcomes_barrier": {1: 1}}  # fmt: skip
        await committed(
            sessions, apply_person_removed, event_id="rm-vip", person_id="bob", gallery="vip", **barrier
        )

        assert await delete_gallery(sessions, "del1", 4, "vip")
        assert not await delete_gallery(sessions, "del1", 4, "vip")
        vip = await read(sessions, get_gallery, gallery="vip")
        assert (vip.state, vip.person_count, vip.face_count, vip.pack) == ("deleting", 0, 0, "buffalo_l")
        assert await read(sessions, get_person, person_id="alice", gallery="vip") is None
        assert await read(sessions, get_enrollment, enrollment_id="e-vip", gallery="vip") is None
        assert await read(sessions, get_face, face_id="f-vip", gallery="vip") is None
        for gallery in ("default", "lobby"):
            assert await read(sessions, face_ids_of_person, person_id="alice", gallery=gallery) == [
                f"f-{gallery}"
            ]
            assert (
                await read(sessions, get_enrollment, enrollment_id=f"e-{gallery}", gallery=gallery)
                is not None
            )

        # Facts of a deleting gallery are not projected.
        assert not await embed(sessions, "ev-late", 5, face_id="f-late", person_id="carol", gallery="vip")
        assert not await outcome(
            sessions, "o-late", 5, image_index=0, image_count=1, enrollment_id="e-late", gallery="vip"
        )
        assert await read(sessions, count_persons, gallery="vip") == 0
        assert await read(sessions, get_enrollment, enrollment_id="e-late", gallery="vip") is None

        # The tombstone removes the row; the id is free again.
        assert await remove_gallery(sessions, "vip", 6)
        assert not await remove_gallery(sessions, "vip", 6)
        assert [g.gallery for g in await read(sessions, list_galleries)] == ["default", "lobby"]
        assert await define(sessions, "g3", 7, generation=0, description="again")
        vip = await read(sessions, get_gallery, gallery="vip")
        assert (vip.state, vip.description, vip.person_count) == ("active", "again", 0)
        # The old erasure barrier went with the old gallery.
        assert await embed(sessions, "ev-new", 0, face_id="f-bob", person_id="bob", gallery="vip")

    async def test_deletion_of_a_gallery_never_defined_here(self, sessions: Sessions) -> None:
        await embed(sessions, "ev1", 1, face_id="f1", gallery="early")  # before its definition was read
        assert await read(sessions, count_faces, gallery="early") == 1
        assert await delete_gallery(sessions, "del1", 2, "early")
        early = await read(sessions, get_gallery, gallery="early")
        assert (early.state, early.face_count) == ("deleting", 0)
        assert not await embed(sessions, "ev2", 3, face_id="f2", gallery="early")

    async def test_faces_of_a_removed_gallery_leave_no_person_behind(self, sessions: Sessions) -> None:
        await define(sessions, "g1", 1)
        await delete_gallery(sessions, "del1", 2, "vip")
        await remove_gallery(sessions, "vip", 3)
        # A face read after the gallery is gone, then its tombstone from the eraser.
        assert await embed(sessions, "ev1", 4, face_id="fv1", person_id="alice", gallery="vip")
        assert await tombstone(sessions, "fv1", 5)
        assert await read(sessions, count_persons, gallery="vip") == 0
        # In a gallery that exists, the person stays without faces, as before.
        await embed(sessions, "ev2", 6, face_id="fd1", person_id="alice")
        await tombstone(sessions, "fd1", 7)
        assert await read(sessions, count_persons) == 1

    async def test_one_transaction_sees_its_own_erasures_and_deletions(self, sessions: Sessions) -> None:
        """A batch is one transaction: a barrier moved or a gallery removed earlier in it holds
        for the records after it."""

        def erasure(n: int, end: int) -> dict[str, Any]:
            return {"event_id": f"rm{n}", "person_id": "alice", "topic": "t", "partition": 0, "offset": n,
                    "erasure_id": f"x{n}", "barrier": {0: end}, "outcomes_barrier": {}}  # fmt: skip

        async with sessions() as session:

            async def face(n: int, **fact: Any) -> bool:
                return await apply_face_embedded(
                    session, event_id=f"ev{n}", fact=face_embedded(f"f{n}", "alice", **fact), topic=TOPIC,
                    partition=0, offset=n,
                )  # fmt: skip

            await apply_person_removed(session, **erasure(1, 5))
            assert not await face(3)
            await apply_person_removed(session, **erasure(2, 10))
            assert not await face(7)  # below the second barrier

            gallery: dict[str, Any] = {"topic": GALLERIES_TOPIC, "partition": 0}
            await apply_gallery_defined(
                session, event_id="g1", fact=gallery_defined("vip"), offset=1, **gallery
            )
            assert await face(20, gallery="vip")
            await apply_face_removed(
                session, event_id="t1", face_id="f20", topic=TOPIC, partition=0, offset=21
            )
            await apply_gallery_deleted(
                session, event_id="g2", fact=gallery_deleted("vip"), offset=2, **gallery
            )
            await apply_gallery_removed(session, event_id="g3", gallery="vip", offset=3, **gallery)
            assert await face(22, gallery="vip")  # read after its gallery is gone
            await apply_face_removed(
                session, event_id="t2", face_id="f22", topic=TOPIC, partition=0, offset=23
            )
            assert await count_persons(session, gallery="vip") == 0
            await session.commit()
