"""`Annotated` dependency aliases: what a route needs, resolved from the app's state.

Every dependency is `async def`, blocking nothing: FastAPI runs a plain `def` dependency in its
thread pool, and the five an identify needed cost it a thread round trip each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import KeyRing, Permission, Principal, require
from api.erasure_ledger import ErasureLedger
from api.gateway import KafkaGateway
from api.ratelimit import RateLimiter
from api.replicas import ReplicaTracker
from core.errors import ErrorCode, FacestreamError
from core.gallery_catalog import GalleryCatalog
from core.metrics import Metrics
from core.settings import Settings
from schemas.events import DEFAULT_GALLERY, GALLERY_ID_PATTERN, GalleryDefined


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_gateway(request: Request) -> KafkaGateway:
    gateway: KafkaGateway = request.app.state.gateway
    if not gateway.started:
        raise FacestreamError(ErrorCode.UNAVAILABLE, "not connected to the broker yet")
    return gateway


async def get_ledger(request: Request) -> ErasureLedger:
    return request.app.state.ledger  # type: ignore[no-any-return]


async def get_replicas(request: Request) -> ReplicaTracker:
    return request.app.state.replicas  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    try:
        async with request.app.state.sessions() as session:
            yield session
    except (OperationalError, DBAPIError, OSError) as exc:
        raise FacestreamError(ErrorCode.UNAVAILABLE, "database unavailable") from exc


async def get_principal(
    request: Request, x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> Principal:
    keyring: KeyRing = request.app.state.keyring
    principal = keyring.authenticate(x_api_key)
    limiter: RateLimiter = request.app.state.limiter
    limiter.acquire(principal.bucket)
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings)]
GatewayDep = Annotated[KafkaGateway, Depends(get_gateway)]
ReplicasDep = Annotated[ReplicaTracker, Depends(get_replicas)]
LedgerDep = Annotated[ErasureLedger, Depends(get_ledger)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def gallery_id(request: Request) -> str:
    """The gallery a route acts on: from its path, else the default gallery."""
    return str(request.path_params.get("gallery", DEFAULT_GALLERY))


async def gallery_path(
    gallery: Annotated[str, Path(pattern=GALLERY_ID_PATTERN, description="A gallery id", examples=["staff"])],
) -> None:
    """Declares and validates the `{gallery}` of the routes under /galleries/{gallery}."""


async def get_catalog(request: Request) -> GalleryCatalog:
    return request.app.state.galleries  # type: ignore[no-any-return]


async def get_gallery(request: Request, principal: PrincipalDep) -> GalleryDefined:
    """The route's gallery, active and visible to the key: 403 before 404, so that a scoped key
    cannot tell another gallery from a missing one."""
    gallery = gallery_id(request)
    if not principal.sees(gallery):
        raise FacestreamError(ErrorCode.FORBIDDEN, f"this key has no access to gallery {gallery!r}")
    catalog: GalleryCatalog = request.app.state.galleries
    found = await catalog.lookup(gallery)
    if found is None:
        raise FacestreamError(ErrorCode.UNKNOWN_GALLERY, f"gallery {gallery!r} does not exist")
    if found.state != "active":
        raise FacestreamError(ErrorCode.GALLERY_DELETING, f"gallery {gallery!r} is being deleted")
    return found.definition


CatalogDep = Annotated[GalleryCatalog, Depends(get_catalog)]
GalleryDep = Annotated[GalleryDefined, Depends(get_gallery)]


def permission(needed: Permission):  # type: ignore[no-untyped-def]
    """The key may do `needed` in the route's gallery."""

    async def check(request: Request, principal: PrincipalDep) -> Principal:
        require(principal, needed, gallery_id(request))
        return principal

    return Depends(check)
