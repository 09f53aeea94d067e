"""Person reads from the PostgreSQL projection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Permission, Principal
from api.deps import GalleryDep, SessionDep, permission
from api.responses import AUTH_ERRORS
from api.routes.enroll import PersonIdPath
from core.errors import ErrorCode, FacestreamError
from db import queries
from schemas.api import ErrorBody, FacePublic, PersonList, PersonPublic, PersonSummaryPublic

router = APIRouter(tags=["persons"])

Reader = Annotated[Principal, permission(Permission.READ)]


@router.get(
    "/persons/{person_id}",
    response_model=PersonPublic,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    summary="A person and their enrolled faces",
)
async def get_person(
    person_id: PersonIdPath, session: SessionDep, _: Reader, gallery: GalleryDep
) -> PersonPublic:
    record = await queries.get_person(session, person_id=person_id, gallery=gallery.gallery)
    if record is None:
        raise FacestreamError(ErrorCode.UNKNOWN_PERSON, f"no person {person_id!r}")
    return PersonPublic(
        person_id=record.person_id,
        face_count=record.face_count,
        faces=[
            FacePublic(
                face_id=f.face_id,
                quality=f.quality,
                bbox=f.bbox,
                model_id=f.model_id,
                created_at=f.created_at,
            )
            for f in record.faces
        ],
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


@router.get(
    "/persons",
    response_model=PersonList,
    responses={**AUTH_ERRORS, 503: {"model": ErrorBody}},
    summary="Enrolled persons, by id",
)
async def list_persons(
    session: SessionDep,
    _: Reader,
    gallery: GalleryDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PersonList:
    items = await queries.list_persons(session, limit=limit, offset=offset, gallery=gallery.gallery)
    return PersonList(
        items=[
            PersonSummaryPublic(
                person_id=p.person_id,
                face_count=p.face_count,
                created_at=p.created_at,
                updated_at=p.updated_at,
            )
            for p in items
        ],
        total=await queries.count_persons(session, gallery=gallery.gallery),
        limit=limit,
        offset=offset,
    )
