"""POST /identify: one IdentifyFace, answered by an index replica through our reply topic."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile

from api import audit
from api.auth import Permission, Principal, require
from api.deps import GatewayDep, ReplicasDep, SettingsDep, permission
from api.gateway import parse_reply
from api.uploads import read_upload
from core.errors import ErrorCode, FacestreamError
from schemas.api import CandidatePublic, ErrorBody, IdentifyResponse
from schemas.envelope import Envelope, new_id
from schemas.events import FaceIdentified, IdentifyFace, IdentifyFailed

router = APIRouter(tags=["identification"])


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        413: {"model": ErrorBody},
        415: {"model": ErrorBody},
        422: {
            "model": ErrorBody,
            "description": "no_face, undecodable_image, invalid_parameter, ...",
        },
        503: {"model": ErrorBody},
        504: {"model": ErrorBody},
    },
    summary="Identify the face in a photo against the gallery",
)
async def identify(
    image: Annotated[UploadFile, File(description="One photo")],
    settings: SettingsDep,
    gateway: GatewayDep,
    replicas: ReplicasDep,
    principal: Annotated[Principal, permission(Permission.IDENTIFY)],
    top_k: Annotated[int | None, Query(ge=1, le=100, description="Candidates to return")] = None,
    threshold: Annotated[
        float | None, Query(ge=-1.0, le=1.0, description="Cosine threshold for this request")
    ] = None,
) -> IdentifyResponse:
    if threshold is not None:
        require(principal, Permission.OVERRIDE_THRESHOLD)
    data = await read_upload(image, settings.max_image_bytes)
    if not replicas.ready():
        raise FacestreamError(ErrorCode.UNAVAILABLE, "no index replica is ready to answer")
    request_id = new_id()
    command = IdentifyFace(request_id=request_id, image=data, top_k=top_k, threshold=threshold, source="api")
    (reply,) = await gateway.request(
        settings.topics.identify_requests,
        [(request_id, Envelope.wrap(command, correlation_id=request_id))],
        correlation_id=request_id,
    )
    result = parse_reply(reply, FaceIdentified, IdentifyFailed).payload
    if isinstance(result, IdentifyFailed):
        await audit.record(
            gateway,
            settings,
            principal,
            action="identify",
            request_id=request_id,
            outcome=result.error.code,
            threshold=threshold,
        )
        raise FacestreamError(_code(result.error.code), result.error.message)
    await audit.record(
        gateway,
        settings,
        principal,
        action="identify",
        request_id=request_id,
        person_id=result.person_id,
        outcome="unknown" if result.unknown else "match",
        model=result.model,
        threshold=result.threshold,
        similarity=result.similarity,
    )
    return IdentifyResponse(
        request_id=request_id,
        person_id=result.person_id,
        similarity=result.similarity,
        unknown=result.unknown,
        threshold=result.threshold,
        candidates=[
            CandidatePublic(person_id=c.person_id, similarity=c.similarity) for c in result.candidates
        ],
        model=result.model,
        bbox=result.bbox,
        gallery_size=result.gallery_size,
        timings_ms=result.timings.model_dump(),
    )


def _code(value: str) -> ErrorCode:
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.INTERNAL
