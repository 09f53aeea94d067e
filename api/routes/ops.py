"""Operations: /health (liveness and readiness), /stats, /metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import Permission, Principal
from api.deps import GalleryDep, GatewayDep, MetricsDep, ReplicasDep, SettingsDep, permission
from api.gateway import KafkaGateway
from api.responses import AUTH_ERRORS
from db import queries
from db.session import ping
from schemas.api import HealthResponse, ReplicaPublic, StatsResponse
from schemas.events import DEFAULT_GALLERY, ReplicaStatus

router = APIRouter(tags=["operations"])
# /stats is a gallery's: mounted at the root (the default gallery) and under /galleries/{gallery}.
scoped = APIRouter(tags=["operations"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "not ready: broker or replicas"}},
    summary="Liveness and readiness",
    description=(
        "`ready` needs the broker and at least one caught-up index replica. With the database "
        "away the API still identifies: status `degraded`, HTTP 200."
    ),
)
async def health(request: Request, replicas: ReplicasDep) -> JSONResponse:
    gateway = request.app.state.gateway
    # Both at once, each bounded by itself (2 s): a probe waits for the slower, not the sum.
    database_ok, broker_ok = await asyncio.gather(
        ping(request.app.state.db_engine, timeout_s=2.0), _broker_ok(gateway)
    )
    replicas_ok = replicas.covers_every_partition()
    ready = broker_ok and replicas_ok
    status: Literal["ready", "degraded", "unavailable"] = (
        "ready" if ready and database_ok else "degraded" if ready else "unavailable"
    )
    body = HealthResponse(
        status=status,
        live=True,
        ready=ready,
        checks={"broker": broker_ok, "database": database_ok, "replicas": replicas_ok},
        detail={"replicas": f"{len(replicas.ready())} ready of {len(replicas.live())} live"},
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _broker_ok(gateway: KafkaGateway) -> bool:
    return gateway.started and await gateway.broker_reachable()


@router.get("/health/live", summary="Liveness only: the process answers")
async def live() -> dict[str, bool]:
    return {"live": True}


@scoped.get(
    "/stats", response_model=StatsResponse, responses=AUTH_ERRORS, summary="Gallery, replicas and traffic"
)
async def stats(
    request: Request,
    settings: SettingsDep,
    gateway: GatewayDep,
    replicas: ReplicasDep,
    _: Annotated[Principal, permission(Permission.READ)],
    gallery: GalleryDep,
) -> StatsResponse:
    persons = faces = None
    try:
        async with request.app.state.sessions() as session:
            persons = await queries.count_persons(session, gallery=gallery.gallery)
            faces = await queries.count_faces(session, gallery=gallery.gallery)
    except Exception:  # the database being away must not take /stats down with it
        pass
    live = replicas.live()
    ready = [hb for hb in live if hb.status.ready]
    return StatsResponse(
        persons=persons,
        faces=faces,
        gallery_size=max((_size_of(hb.status, gallery.gallery) for hb in ready), default=0),
        replicas=[
            ReplicaPublic(
                replica_id=hb.status.replica_id,
                group=hb.status.group,
                ready=hb.status.ready,
                size=_size_of(hb.status, gallery.gallery),
                lag=hb.status.lag,
                model=hb.status.model,
                backend=hb.status.backend,
                restored_from=hb.status.restored_from,
                applied_offsets=hb.status.applied_offsets,
                snapshot_offsets=hb.status.snapshot_offsets,
                seconds_since_heartbeat=round(hb.age_s, 3),
            )
            for hb in live
        ],
        in_flight=gateway.in_flight,
        threshold=settings.threshold if gallery.threshold is None else gallery.threshold,
        model=ready[0].status.model if ready else "",
        consumer_lag=request.app.state.lag.rows,
    )


def _size_of(status: ReplicaStatus, gallery: str) -> int:
    """The gallery's faces in a replica (a replica from before galleries holds only the default)."""
    if not status.gallery_sizes:
        return status.size if gallery == DEFAULT_GALLERY else 0
    return status.gallery_sizes.get(gallery, 0)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
