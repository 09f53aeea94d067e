"""Erasure: DELETE a person or a face. Tombstones on the embeddings log remove the faces from
every replica; the projection deletes the rows; the caller gets a receipt."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path

from api import audit
from api.auth import Permission, Principal
from api.deps import GatewayDep, SessionDep, SettingsDep, permission
from api.gateway import KafkaGateway
from api.responses import AUTH_ERRORS
from api.routes.enroll import PersonIdPath
from core.errors import ErrorCode, FacestreamError
from core.settings import Settings
from db import queries
from schemas.api import ErasureReceipt, ErrorBody, Tombstone
from schemas.envelope import Envelope, new_id
from schemas.events import PersonErased

router = APIRouter(tags=["erasure"])

Manager = Annotated[Principal, permission(Permission.MANAGE)]
FaceIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="A face id from an enrollment")]


@router.delete(
    "/persons/{person_id}",
    response_model=ErasureReceipt,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    summary="Erase a person: every face leaves every index and the database",
)
async def erase_person(
    person_id: PersonIdPath,
    settings: SettingsDep,
    gateway: GatewayDep,
    session: SessionDep,
    principal: Manager,
) -> ErasureReceipt:
    person = await queries.get_person(session, person_id=person_id)
    if person is None:
        raise FacestreamError(ErrorCode.UNKNOWN_PERSON, f"no person {person_id!r}")
    face_ids = [face.face_id for face in person.faces]
    receipt = await _erase(
        gateway, settings, principal, action="erase_person", person_id=person_id, face_ids=face_ids
    )
    erased = PersonErased(
        erasure_id=receipt.erasure_id, person_id=person_id, face_ids=face_ids, requested_by=principal.key_id
    )
    await gateway.publish(
        settings.topics.erasures, [(person_id, Envelope.wrap(erased, correlation_id=receipt.erasure_id))]
    )
    return receipt


@router.delete(
    "/faces/{face_id}",
    response_model=ErasureReceipt,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    summary="Erase one face",
)
async def erase_face(
    face_id: FaceIdPath,
    settings: SettingsDep,
    gateway: GatewayDep,
    session: SessionDep,
    principal: Manager,
) -> ErasureReceipt:
    face = await queries.get_face(session, face_id=face_id)
    if face is None:
        raise FacestreamError(ErrorCode.UNKNOWN_FACE, f"no face {face_id!r}")
    return await _erase(
        gateway, settings, principal, action="erase_face", person_id=face.person_id, face_ids=[face_id]
    )


async def _erase(
    gateway: KafkaGateway,
    settings: Settings,
    principal: Principal,
    *,
    action: Literal["erase_person", "erase_face"],
    person_id: str,
    face_ids: list[str],
) -> ErasureReceipt:
    """Tombstones for the faces (and any retained images), an audit record, the receipt."""
    erasure_id = new_id()
    acks = await gateway.tombstones(settings.topics.embeddings, face_ids)
    await gateway.tombstones(settings.topics.enrollment_images, face_ids)
    await audit.record(
        gateway,
        settings,
        principal,
        action=action,
        request_id=erasure_id,
        person_id=person_id,
        face_ids=face_ids,
        outcome="erased",
    )
    return ErasureReceipt(
        erasure_id=erasure_id,
        person_id=person_id,
        face_ids=face_ids,
        tombstones=[
            Tombstone(face_id=f, partition=a.partition, offset=a.offset)
            for f, a in zip(face_ids, acks, strict=True)
        ],
        requested_at=datetime.now(UTC),
    )
