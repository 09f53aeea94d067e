"""Erasure as a command on the log: DELETE answers 202 at once; GET /erasures/{id} is the receipt.

Neither route touches the database: the eraser knows each person's faces from the
embeddings log, so an erasure works with PostgreSQL down, for a person enrolled a moment
ago, and for an enrollment still in flight (ErasePerson shares the person's partition on the
enroll-requests topic, so it is ordered behind that person's earlier enrollments).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from api import audit
from api.auth import Permission, Principal, require
from api.deps import GalleryDep, GatewayDep, LedgerDep, PrincipalDep, ReplicasDep, SettingsDep, permission
from api.erasure_ledger import ErasureLedger
from api.gateway import KafkaGateway
from api.receipts import receipt
from api.responses import AUTH_ERRORS
from api.routes.enroll import PersonIdPath
from core.errors import ErrorCode, FacestreamError
from core.settings import Settings
from schemas.api import ErasureAccepted, ErasureReceipt, ErrorBody, LogPosition
from schemas.envelope import Envelope, new_id
from schemas.events import DEFAULT_GALLERY, EraseFace, EraseGallery, ErasePerson, ErasureRequested

router = APIRouter(tags=["erasure"])
# Receipts are not under a gallery: an erasure id names one.
receipts = APIRouter(tags=["erasure"])

Manager = Annotated[Principal, permission(Permission.MANAGE)]
FaceIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="A face id from an enrollment")]
ErasureIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="From a DELETE's answer")]

_ACCEPTED = {
    **AUTH_ERRORS,
    422: {"model": ErrorBody, "description": "invalid_person_id / invalid face id"},
    503: {"model": ErrorBody, "description": "broker unavailable"},
}


@router.delete(
    "/persons/{person_id}",
    status_code=202,
    response_model=ErasureAccepted,
    responses=_ACCEPTED,
    summary="Erase a person: every face enrolled before this call leaves every index and the database",
)
async def erase_person(
    person_id: PersonIdPath,
    settings: SettingsDep,
    gateway: GatewayDep,
    ledger: LedgerDep,
    principal: Manager,
    gallery: GalleryDep,
) -> ErasureAccepted:
    erasure_id = new_id()
    return await accept_erasure(
        gateway,
        ledger,
        settings,
        principal,
        # Same topic and key as the person's enrollments: one partition, one order.
        topic=settings.topics.enroll_requests,
        key=person_id,
        command=ErasePerson(
            erasure_id=erasure_id, person_id=person_id, gallery=gallery.gallery, requested_by=principal.key_id
        ),
        requested=ErasureRequested(
            erasure_id=erasure_id,
            kind="person",
            gallery=gallery.gallery,
            person_id=person_id,
            requested_by=principal.key_id,
        ),
    )


@router.delete(
    "/faces/{face_id}",
    status_code=202,
    response_model=ErasureAccepted,
    responses=_ACCEPTED,
    summary="Erase one face",
)
async def erase_face(
    face_id: FaceIdPath,
    settings: SettingsDep,
    gateway: GatewayDep,
    ledger: LedgerDep,
    principal: Manager,
    gallery: GalleryDep,
) -> ErasureAccepted:
    erasure_id = new_id()
    return await accept_erasure(
        gateway,
        ledger,
        settings,
        principal,
        topic=settings.topics.erasure_requests,
        key=face_id,
        command=EraseFace(
            erasure_id=erasure_id, face_id=face_id, gallery=gallery.gallery, requested_by=principal.key_id
        ),
        requested=ErasureRequested(
            erasure_id=erasure_id,
            kind="face",
            gallery=gallery.gallery,
            face_id=face_id,
            requested_by=principal.key_id,
        ),
    )


@receipts.get(
    "/erasures/{erasure_id}",
    response_model=ErasureReceipt,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody, "description": "unknown erasure, person or face"}},
    summary="The receipt of an erasure: pending until every replica and the projection applied it",
)
async def get_erasure(
    erasure_id: ErasureIdPath,
    settings: SettingsDep,
    ledger: LedgerDep,
    replicas: ReplicasDep,
    principal: PrincipalDep,
) -> ErasureReceipt:
    entry = ledger.get(erasure_id)
    gallery = entry.gallery if entry is not None else DEFAULT_GALLERY
    # Another gallery's erasure answers like a missing one: a scoped key learns nothing of it.
    if principal.sees(gallery):
        require(principal, Permission.MANAGE, gallery)
    if entry is None or not principal.sees(gallery):
        raise FacestreamError(ErrorCode.NOT_FOUND, f"no erasure {erasure_id!r} on the ledger")
    return receipt(
        erasure_id,
        entry,
        ready_replicas=[hb.status for hb in replicas.ready()],
        projector_committed=await ledger.projector_offsets() if entry.outcome is not None else {},
        topics=settings.topics,
    )


async def accept_erasure(
    gateway: KafkaGateway,
    ledger: ErasureLedger,
    settings: Settings,
    principal: Principal,
    *,
    topic: str,
    key: str,
    command: ErasePerson | EraseFace | EraseGallery,
    requested: ErasureRequested,
) -> ErasureAccepted:
    """The command on the log; then the receipt's first entry on the ledger (any facade can
    answer for it) and the audit record."""
    erasure_id = requested.erasure_id
    (ack,) = await gateway.publish(topic, [(key, Envelope.wrap(command, correlation_id=erasure_id))])
    await gateway.publish(
        settings.topics.erasures, [(key, Envelope.wrap(requested, correlation_id=erasure_id))]
    )
    ledger.note(requested, at=datetime.now(UTC))
    await audit.record(
        gateway,
        settings,
        principal,
        gallery=requested.gallery,
        action=f"erase_{requested.kind}",
        request_id=erasure_id,
        person_id=requested.person_id,
        face_ids=[requested.face_id] if requested.face_id else [],
        outcome="requested",
    )
    return ErasureAccepted(
        erasure_id=erasure_id,
        kind=requested.kind,
        gallery=requested.gallery,
        person_id=requested.person_id,
        face_id=requested.face_id,
        command=LogPosition(topic=topic, partition=ack.partition, offset=ack.offset),
        receipt=f"/erasures/{erasure_id}",
    )
