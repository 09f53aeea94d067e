"""Galleries as a resource: each is a record on the compacted galleries topic, which every
process follows; creating, deleting or replaying one is publishing there.

DELETE is an erasure: the gallery is marked deleting (no process accepts its work from then
on, replicas drop its index), the eraser tombstones every face the log holds for it, and the
receipt (GET /erasures/{id}) follows it to done like a person's erasure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request
from sqlalchemy.exc import DBAPIError, OperationalError

from api import audit
from api.auth import Permission, Principal
from api.deps import (
    CatalogDep,
    GalleryDep,
    GatewayDep,
    LedgerDep,
    PrincipalDep,
    SettingsDep,
    gallery_id,
    permission,
)
from api.responses import AUTH_ERRORS
from api.routes.erasure import accept_erasure
from core.errors import ErrorCode, FacestreamError
from core.galleries import Gallery
from core.settings import Settings
from db import queries
from engine.packs import locate
from index import registry as index_registry
from schemas.api import (
    ErasureAccepted,
    ErrorBody,
    GalleryCreate,
    GalleryList,
    GalleryPublic,
    GalleryReplay,
)
from schemas.envelope import Envelope, new_id
from schemas.events import (
    DEFAULT_GALLERY,
    EraseGallery,
    ErasureRequested,
    GalleryDefined,
    GalleryDeleted,
    IndexSpec,
)

router = APIRouter(tags=["galleries"])
# The routes that act on one gallery: mounted under /galleries/{gallery} (see api.app).
one = APIRouter(tags=["galleries"])

Administrator = Annotated[Principal, permission(Permission.ADMINISTER)]
Reader = Annotated[Principal, permission(Permission.READ)]


def public(
    gallery: Gallery, settings: Settings, *, persons: int | None = None, faces: int | None = None
) -> GalleryPublic:
    d = gallery.definition
    return GalleryPublic(
        id=d.gallery,
        description=d.description,
        pack=d.pack,
        threshold=settings.threshold if d.threshold is None else d.threshold,
        quality_filter_enroll=d.quality_filter_enroll or settings.quality_filter_enroll,
        quality_filter_identify=d.quality_filter_identify or settings.quality_filter_identify,
        index=IndexSpec(backend=d.index.backend or settings.index_backend, options=d.index.options),
        generation=d.generation,
        state=gallery.state,
        created_by=d.created_by,
        created_at=d.created_at,
        persons=persons,
        faces=faces,
    )


@router.post(
    "/galleries",
    status_code=201,
    response_model=GalleryPublic,
    responses={
        **AUTH_ERRORS,
        409: {"model": ErrorBody, "description": "gallery_exists"},
        422: {"model": ErrorBody, "description": "invalid id, unknown backend, pack not installed"},
    },
    summary="Create a gallery (an unscoped admin key)",
)
async def create_gallery(
    body: GalleryCreate,
    settings: SettingsDep,
    gateway: GatewayDep,
    catalog: CatalogDep,
    principal: Annotated[Principal, permission(Permission.ADMINISTER)],
) -> GalleryPublic:
    if not principal.unscoped:
        raise FacestreamError(ErrorCode.FORBIDDEN, "only a key for every gallery may create galleries")
    await catalog.refresh()
    if catalog.registry.get(body.id) is not None:
        raise FacestreamError(ErrorCode.GALLERY_EXISTS, f"gallery {body.id!r} exists")
    pack = body.pack or settings.model_pack
    if pack != settings.model_pack:
        # The workers load another pack on the gallery's first command, from the models folder
        # they share with this process (the image, or `facestream models pull`).
        try:
            locate(pack, settings.models_dir)
        except FacestreamError as exc:
            raise FacestreamError(ErrorCode.INVALID_PARAMETER, exc.message) from exc
    backend = body.index.backend or settings.index_backend
    if backend not in index_registry.names():
        raise FacestreamError(
            ErrorCode.INVALID_PARAMETER,
            f"unknown index backend {backend!r}; known: {', '.join(index_registry.names())}",
        )
    definition = GalleryDefined(
        gallery=body.id,
        description=body.description,
        pack=pack,
        threshold=body.threshold,
        quality_filter_enroll=body.quality_filter_enroll,
        quality_filter_identify=body.quality_filter_identify,
        index=IndexSpec(backend=backend, options=body.index.options),
        created_by=principal.key_id,
        created_at=datetime.now(UTC).isoformat(),
    )
    await gateway.publish(
        settings.topics.galleries, [(body.id, Envelope.wrap(definition, correlation_id=new_id()))]
    )
    await catalog.refresh()
    await audit.record(
        gateway,
        settings,
        principal,
        gallery=body.id,
        action="create_gallery",
        request_id=new_id(),
        outcome="created",
    )
    return public(Gallery(definition), settings)


@router.get(
    "/galleries", response_model=GalleryList, responses=AUTH_ERRORS, summary="The galleries this key may see"
)
async def list_galleries(settings: SettingsDep, catalog: CatalogDep, principal: PrincipalDep) -> GalleryList:
    await catalog.refresh()
    return GalleryList(
        galleries=[public(g, settings) for g in catalog.registry.all() if principal.sees(g.id)]
    )


@one.get(
    "",
    response_model=GalleryPublic,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody}},
    summary="One gallery, with its policies in force and its counts",
)
async def get_gallery(
    settings: SettingsDep,
    catalog: CatalogDep,
    request: Request,
    principal: Reader,
) -> GalleryPublic:
    # Not GalleryDep: a gallery being deleted is shown (state "deleting"), not refused.
    gallery = gallery_id(request)
    found = await catalog.lookup(gallery)
    if found is None:
        raise FacestreamError(ErrorCode.UNKNOWN_GALLERY, f"gallery {gallery!r} does not exist")
    persons = faces = None
    try:
        async with request.app.state.sessions() as session:
            persons = await queries.count_persons(session, gallery=gallery)
            faces = await queries.count_faces(session, gallery=gallery)
    except (OperationalError, DBAPIError, OSError):
        pass  # counts are the projection's: without the database the gallery still answers
    return public(found, settings, persons=persons, faces=faces)


@one.delete(
    "",
    status_code=202,
    response_model=ErasureAccepted,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    summary="Delete a gallery: an erasure of every face in it, with a receipt",
)
async def delete_gallery(
    gallery: GalleryDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    ledger: LedgerDep,
    catalog: CatalogDep,
    principal: Administrator,
) -> ErasureAccepted:
    if gallery.gallery == DEFAULT_GALLERY:
        raise FacestreamError(ErrorCode.DEFAULT_GALLERY, "the default gallery cannot be deleted")
    erasure_id = new_id()
    gid = gallery.gallery
    deleted = GalleryDeleted(gallery=gid, erasure_id=erasure_id, requested_by=principal.key_id)
    # First the mark: from here on no process accepts the gallery's work.
    await gateway.publish(
        settings.topics.galleries, [(gid, Envelope.wrap(deleted, correlation_id=erasure_id))]
    )
    await catalog.refresh()
    return await accept_erasure(
        gateway,
        ledger,
        settings,
        principal,
        topic=settings.topics.erasure_requests,
        key=gid,
        command=EraseGallery(erasure_id=erasure_id, gallery=gid, requested_by=principal.key_id),
        requested=ErasureRequested(
            erasure_id=erasure_id, kind="gallery", gallery=gid, requested_by=principal.key_id
        ),
    )


@one.post(
    "/replay",
    status_code=202,
    response_model=GalleryReplay,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody}},
    summary="Rebuild this gallery's index in every replica from the log; the others keep answering",
)
async def replay_gallery(
    gallery: GalleryDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    catalog: CatalogDep,
    principal: Administrator,
) -> GalleryReplay:
    if gallery.gallery == DEFAULT_GALLERY:
        # The default gallery is defined by the settings, not on the topic: `facestream replay`.
        raise FacestreamError(
            ErrorCode.DEFAULT_GALLERY, "replay the default gallery with `facestream replay`"
        )
    bumped = gallery.model_copy(update={"generation": gallery.generation + 1})
    await gateway.publish(
        settings.topics.galleries, [(gallery.gallery, Envelope.wrap(bumped, correlation_id=new_id()))]
    )
    await catalog.refresh()
    return GalleryReplay(gallery=gallery.gallery, generation=bumped.generation)
