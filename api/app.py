"""The FastAPI facade: built from Settings by `create_app`, nothing global."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.formparsers import MultiPartParser

from api.auth import KeyRing, parse_api_keys
from api.deps import gallery_path
from api.docs import install_offline_docs
from api.erasure_ledger import ErasureLedger
from api.errors import install_error_handlers
from api.gateway import KafkaGateway
from api.lag_monitor import LagMonitor
from api.limits import BodySizeLimit
from api.observe import Observe
from api.ratelimit import RateLimiter
from api.replicas import ReplicaTracker
from api.routes import enroll, erasure, galleries, identify, ops, persons
from core.gallery_catalog import GalleryCatalog
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from db.session import create_engine, create_sessionmaker
from schemas.api import ErrorBody

log = get_logger(__name__)

DESCRIPTION = """
Event-streaming face enrollment and 1:N identification. Every request is published on
Kafka and answered by the stream processors and index replicas; errors always carry a
machine-readable `code`. Authenticate with the `X-API-Key` header.
"""


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.replicas.start()
        await app.state.galleries.start()
        await app.state.gateway.start()
        await app.state.ledger.start()
        app.state.lag.start()
        log.info("api_started", instance=settings.instance_id, reply_topic=app.state.gateway.reply_topic)
        try:
            yield
        finally:
            await app.state.lag.stop()
            await app.state.ledger.stop()
            await app.state.gateway.stop()
            await app.state.galleries.stop()
            await app.state.replicas.stop()
            await app.state.db_engine.dispose()

    app = FastAPI(
        title="facestream",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves /docs and /redoc with local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics.create()
    app.state.keyring = KeyRing(parse_api_keys(settings.api_keys.get_secret_value()))
    app.state.limiter = RateLimiter(rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    app.state.gateway = KafkaGateway(settings)
    app.state.replicas = ReplicaTracker(settings)
    app.state.ledger = ErasureLedger(settings)
    app.state.galleries = GalleryCatalog(settings)
    app.state.lag = LagMonitor(settings, app.state.metrics)
    app.state.db_engine = create_engine(settings.database_url, connect_args=settings.database_connect_args())
    app.state.sessions = create_sessionmaker(app.state.db_engine)

    install_error_handlers(app)
    install_offline_docs(app)
    app.include_router(galleries.router)
    in_gallery = {
        "prefix": "/galleries/{gallery}",
        "dependencies": [Depends(gallery_path)],
        "responses": {
            404: {"model": ErrorBody, "description": "unknown_gallery"},
            409: {"model": ErrorBody, "description": "gallery_deleting, default_gallery"},
        },
    }
    app.include_router(galleries.one, **in_gallery)  # type: ignore[arg-type]
    # Every gallery route twice: under /galleries/{gallery}, and at the root for the default
    # gallery (the routes from before galleries, unchanged for existing clients).
    for scoped in (enroll.router, identify.router, persons.router, erasure.router, ops.scoped):
        app.include_router(scoped)
        app.include_router(scoped, **in_gallery)  # type: ignore[arg-type]
    app.include_router(erasure.receipts)
    app.include_router(ops.router)

    app.add_middleware(Observe)
    # Outermost: an oversized body is refused before anything else reads it.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    # An upload over starlette's 1 MiB spools to a temporary file, and each of its ~64 KiB parts
    # is then written, and read back, through a thread pool hop. The body is bounded above and
    # read whole into memory by the routes anyway (api/uploads.py).
    MultiPartParser.spool_max_size = settings.max_request_bytes
    return app
