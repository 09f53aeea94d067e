"""POST /identify: one IdentifyFace, answered by every shard group through our reply topic."""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile

from api import audit
from api.auth import Permission, Principal, require
from api.deps import GalleryDep, GatewayDep, ReplicasDep, SettingsDep, permission
from api.gateway import parse_reply
from api.responses import AUTH_ERRORS
from api.uploads import read_upload
from core.errors import ErrorCode, FacestreamError
from core.identification import Identification, merge, resolve_policy
from core.kafka import peek_head
from core.quality_policy import is_low_quality, resolve_filter
from schemas.api import CandidatePublic, ErrorBody, FaceResult, IdentifyResponse
from schemas.envelope import Envelope, new_id
from schemas.events import FaceSearched, IdentifyFace, IdentifyFailed, QualityFilter

router = APIRouter(tags=["identification"])

_OFFSETS = re.compile(r"^\d{1,6}:\d{1,19}(,\d{1,6}:\d{1,19})*$")


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    responses={
        **AUTH_ERRORS,
        413: {"model": ErrorBody},
        415: {"model": ErrorBody},
        422: {"model": ErrorBody, "description": "no_face, undecodable_image, invalid_parameter, ..."},
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
    gallery: GalleryDep,
    top_k: Annotated[int | None, Query(ge=1, le=100, description="Candidates to return")] = None,
    threshold: Annotated[
        float | None, Query(ge=-1.0, le=1.0, description="Cosine threshold for this request")
    ] = None,
    min_offsets: Annotated[
        str | None,
        Query(
            description="Read-your-writes: `partition:offset,...` from an enrollment's `offsets`; "
            "only replicas that applied them answer",
            examples=["0:41,2:17"],
        ),
    ] = None,
    quality_filter: Annotated[
        QualityFilter | None,
        Query(
            description="Refuse (422 low_quality) faces under this filter's bar; default `none`: "
            "answer every face, with its quality and a low_quality flag"
        ),
    ] = None,
) -> IdentifyResponse:
    if threshold is not None:
        require(principal, Permission.OVERRIDE_THRESHOLD, gallery.gallery)
    if quality_filter is not None:
        require(principal, Permission.OVERRIDE_QUALITY, gallery.gallery)
    chosen_filter = resolve_filter(
        quality_filter, gallery.quality_filter_identify or settings.quality_filter_identify
    )
    wanted = _parse_offsets(min_offsets)
    data = await read_upload(image, settings.max_image_bytes)
    shards = replicas.shards()
    if not shards:
        raise FacestreamError(ErrorCode.UNAVAILABLE, "no index replica is ready to answer")
    request_id = new_id()
    # Resolved here, once: the worker and the replicas carry it, the merge below applies it.
    policy = resolve_policy(
        settings, top_k=top_k, threshold=gallery.threshold if threshold is None else threshold
    )
    command = IdentifyFace(
        request_id=request_id,
        gallery=gallery.gallery,
        image=data,
        top_k=policy.top_k,
        threshold=policy.threshold,
        source="api",
        min_offsets=wanted,
        quality_filter=chosen_filter,
    )
    replies = await gateway.request(
        settings.topics.identify_requests,
        [(request_id, Envelope.wrap(command, correlation_id=request_id))],
        correlation_id=request_id,
        expected=len(shards),
        final=_is_failure,
        expected_from=lambda reply: len(shards) * _face_count(reply),
        identity=_answer_of,
        partial_ok=True,
    )
    results = [parse_reply(r, FaceSearched, IdentifyFailed).payload for r in replies]
    failure = next((r for r in results if isinstance(r, IdentifyFailed)), None)
    if failure is not None:
        await audit.record(
            gateway,
            settings,
            principal,
            gallery=gallery.gallery,
            action="identify",
            request_id=request_id,
            outcome=failure.error.code,
            threshold=policy.threshold,
        )
        raise FacestreamError(_code(failure.error.code), failure.error.message)
    answers = [r for r in results if isinstance(r, FaceSearched)]
    face_count = max(a.face_count for a in answers)
    by_face = [[a for a in answers if a.face_index == i] for i in range(face_count)]
    faces = [(group, merge(group)) for group in by_face if group]
    partial = len(answers) < len(shards) * face_count or not replicas.covers_every_partition()
    main, merged = faces[0]
    await audit.record(
        gateway,
        settings,
        principal,
        gallery=gallery.gallery,
        action="identify",
        request_id=request_id,
        person_id=merged.person_id,
        outcome="unknown" if merged.unknown else "match",
        model=merged.model,
        threshold=merged.threshold,
        similarity=merged.similarity,
    )
    return IdentifyResponse(
        request_id=request_id,
        person_id=merged.person_id,
        similarity=merged.similarity,
        unknown=merged.unknown,
        threshold=merged.threshold,
        candidates=_public(merged),
        model=merged.model,
        bbox=main[0].bbox,
        quality=main[0].quality,
        low_quality=is_low_quality(main[0].quality),
        quality_filter=chosen_filter,
        gallery_size=merged.gallery_size,
        partial=partial,
        shards=merged.shards,
        faces=[
            FaceResult(
                bbox=group[0].bbox,
                person_id=m.person_id,
                similarity=m.similarity,
                unknown=m.unknown,
                candidates=_public(m),
                quality=group[0].quality,
                low_quality=is_low_quality(group[0].quality),
            )
            for group, m in faces
        ],
        timings_ms=merged.timings.model_dump(),
    )


def _public(merged: Identification) -> list[CandidatePublic]:
    return [CandidatePublic(person_id=c.person_id, similarity=c.similarity) for c in merged.candidates]


def _face_count(reply: bytes) -> int:
    """How many faces the request's image had (only answers say; failures count as one)."""
    try:
        return int(json.loads(reply)["payload"].get("face_count", 1))
    except (ValueError, KeyError, TypeError, AttributeError):
        return 1


def _answer_of(reply: bytes) -> tuple[str, int]:
    """Which shard's answer for which face a reply is (a failure: the request's only answer)."""
    try:
        payload = json.loads(reply)["payload"]
        return str(payload.get("shard", "")), int(payload.get("face_index", 0))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", 0


def _is_failure(reply: bytes) -> bool:
    head = peek_head(reply)
    return head is not None and head.type == IdentifyFailed.__name__


def _parse_offsets(raw: str | None) -> dict[int, int]:
    if not raw:
        return {}
    if not _OFFSETS.match(raw):
        raise FacestreamError(ErrorCode.INVALID_PARAMETER, "min_offsets must look like 0:41,2:17")
    return {int(p): int(o) for p, o in (item.split(":") for item in raw.split(","))}


def _code(value: str) -> ErrorCode:
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.INTERNAL
