"""POST /enroll/{person_id}: one EnrollFace per image, one ImageEnrolled reply per image."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import JSONResponse

from api import audit
from api.auth import Permission, Principal, require
from api.deps import GalleryDep, GatewayDep, SettingsDep, permission
from api.errors import error_response
from api.gateway import parse_reply
from api.responses import AUTH_ERRORS
from api.uploads import read_upload
from core.errors import ErrorCode, FacestreamError
from core.logging import get_logger
from core.quality_policy import resolve_filter
from schemas.api import AcceptedImage, EnrollResponse, ErrorBody, NoAcceptedImage, RejectedImage
from schemas.envelope import Envelope, new_id
from schemas.events import PERSON_ID_PATTERN, EnrollFace, ImageEnrolled, QualityFilter

router = APIRouter(tags=["enrollment"])
log = get_logger(__name__)

PersonIdPath = Annotated[
    str,
    Path(
        pattern=PERSON_ID_PATTERN,
        description="1-128 characters of [A-Za-z0-9._:@-]",
        examples=["jane.doe"],
    ),
]


@router.post(
    "/enroll/{person_id}",
    status_code=201,
    response_model=EnrollResponse,
    responses={
        **AUTH_ERRORS,
        413: {"model": ErrorBody},
        422: {"model": NoAcceptedImage, "description": "no image was accepted, or invalid input"},
        503: {"model": ErrorBody},
        504: {"model": ErrorBody},
    },
    summary="Enroll a person from one or more photos",
)
async def enroll(
    person_id: PersonIdPath,
    images: Annotated[list[UploadFile], File(description="Photos of the person; repeat the field")],
    settings: SettingsDep,
    gateway: GatewayDep,
    principal: Annotated[Principal, permission(Permission.ENROLL)],
    gallery: GalleryDep,
    quality_filter: Annotated[
        QualityFilter | None,
        Query(
            description="Refuse images whose face is under this filter's bar (rejected with reason "
            "low_quality); default: the gallery's, else `auto` (FACESTREAM_QUALITY_FILTER_ENROLL)"
        ),
    ] = None,
) -> EnrollResponse | JSONResponse:
    if quality_filter is not None:
        require(principal, Permission.OVERRIDE_QUALITY, gallery.gallery)
    chosen_filter = resolve_filter(
        quality_filter, gallery.quality_filter_enroll or settings.quality_filter_enroll
    )
    if len(images) > settings.max_images_per_enroll:
        raise FacestreamError(
            ErrorCode.INVALID_REQUEST,
            f"at most {settings.max_images_per_enroll} images per enrollment, got {len(images)}",
        )
    enrollment_id = new_id()
    rejected: list[RejectedImage] = []
    commands: list[tuple[str, Envelope[EnrollFace]]] = []
    for index, upload in enumerate(images):
        filename = upload.filename or f"image-{index}"
        try:
            data = await read_upload(upload, settings.max_image_bytes)
        except FacestreamError as exc:
            rejected.append(RejectedImage(filename=filename, reason=exc.code.value, message=exc.message))
            continue
        command = EnrollFace(
            enrollment_id=enrollment_id,
            person_id=person_id,
            gallery=gallery.gallery,
            image_index=index,
            image_count=len(images),
            filename=filename,
            image=data,
            quality_filter=chosen_filter,
        )
        commands.append((person_id, Envelope.wrap(command, correlation_id=enrollment_id)))

    accepted: list[AcceptedImage] = []
    model = ""
    if commands:
        replies = await gateway.request(
            settings.topics.enroll_requests, commands, correlation_id=enrollment_id, identity=_image_of
        )
        outcomes = sorted(
            (parse_reply(r, ImageEnrolled).payload for r in replies), key=lambda o: o.image_index
        )
        for outcome in outcomes:
            model = outcome.model
            if outcome.status == "accepted" and outcome.face_id and outcome.bbox:
                accepted.append(
                    AcceptedImage(
                        filename=outcome.filename,
                        face_id=outcome.face_id,
                        quality=outcome.quality or 0.0,
                        bbox=outcome.bbox,
                        embedding_partition=outcome.embedding_partition,
                        embedding_offset=outcome.embedding_offset,
                    )
                )
            else:
                rejected.append(
                    RejectedImage(
                        filename=outcome.filename,
                        reason=outcome.reason or ErrorCode.INTERNAL.value,
                        message=outcome.message or "",
                    )
                )
    log.info(
        "enrollment_done",
        correlation_id=enrollment_id,
        person_id=person_id,
        gallery=gallery.gallery,
        accepted=len(accepted),
        rejected=len(rejected),
        key=principal.key_id,
    )
    await audit.record(
        gateway,
        settings,
        principal,
        gallery=gallery.gallery,
        action="enroll",
        request_id=enrollment_id,
        person_id=person_id,
        face_ids=[a.face_id for a in accepted],
        outcome=f"{len(accepted)} accepted, {len(rejected)} rejected",
        model=model,
    )
    if not accepted:
        reasons = {r.reason for r in rejected}
        code = reasons.pop() if len(reasons) == 1 else "no_accepted_image"
        return error_response(
            code,
            "no image was accepted",
            422,
            person_id=person_id,
            rejected=[r.model_dump() for r in rejected],
        )
    return EnrollResponse(
        person_id=person_id,
        enrollment_id=enrollment_id,
        model=model,
        accepted=accepted,
        rejected=rejected,
        offsets=_highest_offsets(accepted),
    )


def _image_of(reply: bytes) -> int:
    """Which image of the enrollment a reply is the outcome of."""
    try:
        return int(json.loads(reply)["payload"]["image_index"])
    except (ValueError, KeyError, TypeError):
        return -1


def _highest_offsets(accepted: list[AcceptedImage]) -> dict[int, int]:
    offsets: dict[int, int] = {}
    for image in accepted:
        if image.embedding_partition is not None and image.embedding_offset is not None:
            current = offsets.get(image.embedding_partition, -1)
            offsets[image.embedding_partition] = max(current, image.embedding_offset)
    return offsets
