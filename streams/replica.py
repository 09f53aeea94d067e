"""Index replica: rebuilds its index from the compacted embeddings log and answers identify queries.

Small pieces around one index state (``replica_state``: one index per gallery), each its own task:
  * ``LogFollower`` (``replica_log``): snapshot + tail restore, then applies the log;
  * ``QueryServer`` (``replica_serve``): joins the query group only once caught up, answers
    what each poll brings as one batch, read-your-writes ``min_offsets``, dead letters;
  * ``Snapshotter`` (``replica_snapshot``): a copy-on-write view, written while searches and
    applying go on;
  * ``StatusPublisher`` (``replica_status``): status heartbeats and metrics;
  * ``GalleryKeeper`` (``replica_galleries``): follows the galleries topic (``GalleryCatalog``):
    drops a deleted gallery's index, rebuilds one gallery whose definition changed.
This class only starts them, and stops them in order.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer

from core.errors import FacestreamError
from core.gallery_catalog import GalleryCatalog
from core.kafka import make_consumer
from core.metrics import Metrics
from core.rd_producer import RdProducer
from core.settings import Settings
from engine.factory import model_info
from engine.packs import get_pack
from schemas.events import DEFAULT_GALLERY, ModelInfo, ReplicaStatus
from streams.producing import stream_producer
from streams.replica_galleries import GalleryKeeper
from streams.replica_log import LogFollower, PackModels
from streams.replica_serve import QueryServer
from streams.replica_snapshot import Snapshotter
from streams.replica_state import ReplicaState
from streams.replica_status import StatusPublisher

_GALLERY_CHECK_S = 1.0  # how often the galleries topic is read for deletions and rebuilds


def pack_models(settings: Settings, model: ModelInfo) -> PackModels:
    """The model of a gallery's pack: the replica's own, or one the engine knows by name."""

    def model_of(pack: str) -> ModelInfo | None:
        if pack == settings.model_pack:
            return model
        try:
            return model_info(get_pack(pack))
        except FacestreamError:
            return None

    return model_of


class IndexReplica:
    def __init__(self, settings: Settings, metrics: Metrics, model: ModelInfo) -> None:
        self.settings = settings
        self.catalog = GalleryCatalog(settings)
        self.state = ReplicaState()
        self.follower = LogFollower(
            settings, metrics, model, self.state, catalog=self.catalog, models=pack_models(settings, model)
        )
        self.state.hold(DEFAULT_GALLERY, self.follower.default_index())
        self.keeper = GalleryKeeper(settings, self.state, self.follower)
        self.server = QueryServer(settings, metrics, model, self.state)
        self.snapshots = Snapshotter(self.state, self.follower.snapshot_dir, settings.topics.embeddings)
        self.publisher = StatusPublisher(settings, metrics, model.id, self.state)

    def status(self) -> ReplicaStatus:
        return self.publisher.status()

    async def run(self) -> None:
        # Clients bind to the running loop: create them inside it.
        producer = stream_producer(self.settings)
        log_consumer: AIOKafkaConsumer = make_consumer(self.settings, group_id=None)
        await producer.start()
        await log_consumer.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            catalog = asyncio.create_task(self.catalog.start(), name="catalog")
            tasks.append(catalog)  # cancelled with the others if the restore fails
            await self.follower.restore(log_consumer, producer)  # loads the snapshot meanwhile
            await catalog
            tasks = [
                asyncio.create_task(self._keep_galleries(), name="galleries"),
                asyncio.create_task(
                    self.follower.run(log_consumer, producer, polled=self.publisher.observe), name="apply"
                ),
                asyncio.create_task(self.server.run(producer), name="serve"),
                asyncio.create_task(self.snapshots.run(self.settings.snapshot_interval_s), name="snapshot"),
                asyncio.create_task(self.publisher.run(producer, log_consumer), name="status"),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._shutdown(producer, log_consumer)

    async def _keep_galleries(self) -> None:
        """At once (a gallery deleted or redefined while this replica was down), then on."""
        while True:
            await self.keeper.reconcile(self.catalog.registry)
            await asyncio.sleep(_GALLERY_CHECK_S)
            await self.catalog.refresh()

    async def _shutdown(self, producer: RdProducer, log_consumer: AIOKafkaConsumer) -> None:
        # Out of the query group and off the facades' count first: the queries of this
        # replica's partitions go to the group's others now, not after the last snapshot (seconds
        # at 1M faces, written here with nothing else left to serve).
        await self.server.stop()
        with contextlib.suppress(Exception):
            await self.publisher.leave(producer)
        self.snapshots.close()  # a snapshot being written finishes first
        with contextlib.suppress(Exception):
            self.snapshots.write_now()
        await log_consumer.stop()
        await producer.stop()
        with contextlib.suppress(Exception):
            await self.catalog.stop()
