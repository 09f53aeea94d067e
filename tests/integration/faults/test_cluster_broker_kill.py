"""A three-broker KRaft cluster (RF 3, min.insync.replicas=2) under 1,000 enrollments: kill -9
a broker, later kill -9 the active controller. Afterwards exactly 1,000 faces in every replica
and in PostgreSQL, exactly one record per face id on the embeddings log, clients saw only
retriable errors, and no process of the stack was restarted (consumer groups carried on)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.fixtures.services import ServiceEndpoints
from tests.integration.faults.cluster import KafkaCluster, running_cluster
from tests.integration.faults.harness import (
    RETRYABLE_STATUS,
    EnrollTally,
    FaultStack,
    enroll_many,
    launch_stack,
)

pytestmark = [pytest.mark.postgres, pytest.mark.models, pytest.mark.cluster, pytest.mark.timeout(900)]

ENROLLMENTS = 1000
KILL_BROKER_AT = 250  # accepted enrollments when a follower broker is killed
RESTART_BROKER_AT = 400  # ... and started again
KILL_CONTROLLER_AT = 600  # ... when the active controller is killed
RESTART_CONTROLLER_AT = 800
CLIENTS = 8
REPLICAS = ("replica-a", "replica-b")
RETRIABLE = (
    {str(s) for s in RETRYABLE_STATUS}
    | {cls.__name__ for cls in (httpx.TransportError, *httpx.TransportError.__subclasses__())}
    | {"ReadTimeout", "WriteTimeout", "ConnectTimeout", "PoolTimeout", "RemoteProtocolError"}
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    with running_cluster(int(os.environ.get("FACESTREAM_KAFKA_CLUSTER_PORT", "29092"))) as running:
        yield running


@pytest.fixture(scope="module")
def fault(
    cluster: KafkaCluster, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultStack]:
    services = ServiceEndpoints(kafka_bootstrap=cluster.bootstrap, database_url=database_url)
    with launch_stack(
        services,
        tmp_path_factory.mktemp("cluster"),
        name="cluster",
        extra_replicas=len(REPLICAS) - 1,
        topic_replication_factor="3",
    ) as running:
        yield running


async def _replication(bootstrap: str, topic: str) -> tuple[set[int], str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        factors = {len(p["replicas"]) for p in described["partitions"]}
        # The topic's effective value (inherited from the brokers' min.insync.replicas).
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        configs = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
        return factors, configs["min.insync.replicas"]
    finally:
        await admin.close()


def test_topics_are_replicated_three_times_with_two_in_sync(fault: FaultStack) -> None:
    factors, min_isr = asyncio.run(_replication(fault.kafka, fault.embeddings_topic))
    assert (factors, min_isr) == ({3}, "2")


def test_kill_9_a_broker_then_the_controller_mid_enrollment(
    cluster: KafkaCluster, fault: FaultStack, photos: list[bytes]
) -> None:
    work = [(f"c{n:04d}", photos[n % len(photos)]) for n in range(ENROLLMENTS)]
    tally = EnrollTally()
    events: list[str] = []

    def at(accepted: int) -> None:
        while len(tally.accepted) < accepted:
            time.sleep(0.1)

    def faults() -> None:
        at(KILL_BROKER_AT)
        leader = cluster.leader()
        follower = next(n for n in (1, 2, 3) if n != leader)
        cluster.kill(follower)
        events.append(f"broker {follower} killed at {len(tally.accepted)} (controller {leader})")
        at(RESTART_BROKER_AT)
        cluster.start_node(follower)
        events.append(f"broker {follower} back at {len(tally.accepted)}")
        at(KILL_CONTROLLER_AT)
        controller = cluster.leader()
        cluster.kill(controller)
        events.append(f"active controller {controller} killed at {len(tally.accepted)}")
        at(RESTART_CONTROLLER_AT)
        cluster.start_node(controller)
        events.append(f"broker {controller} back at {len(tally.accepted)}, leader now {cluster.leader()}")

    started = time.monotonic()
    thread = threading.Thread(target=faults, daemon=True)
    thread.start()
    enroll_many(fault, work, tally, clients=CLIENTS, timeout=600)
    thread.join(timeout=180)
    elapsed = time.monotonic() - started

    assert len(events) == 4, f"the faults did not all happen: {events}"
    assert not tally.failed, f"gave up on {len(tally.failed)}: {list(tally.failed.items())[:5]}"
    assert set(tally.retried) <= RETRIABLE, f"non-retriable answers: {tally.retried}"
    assert len(tally.accepted) == ENROLLMENTS
    expected = {face for ids in tally.accepted.values() for face in ids}
    assert len(expected) == ENROLLMENTS

    for replica in REPLICAS:
        fault.wait_for(
            f"{ENROLLMENTS} faces in {replica}",
            lambda replica=replica: fault.replica_sizes().get(replica) == ENROLLMENTS,
            timeout=180,
        )
    fault.wait_for(
        f"{ENROLLMENTS} faces in PostgreSQL",
        lambda: fault.faces_in_database()["faces"] >= ENROLLMENTS,
        timeout=180,
    )
    on_log = fault.embeddings_on_the_log()
    assert on_log.duplicated == {}, f"{len(on_log.duplicated)} face ids written more than once"
    assert set(on_log.values) == expected
    assert not on_log.tombstones
    assert fault.faces_in_database() == {
        "faces": ENROLLMENTS,
        "distinct_faces": ENROLLMENTS,
        "persons": ENROLLMENTS,
    }
    assert fault.replica_sizes() == dict.fromkeys(REPLICAS, ENROLLMENTS)
    # Consumer groups carried on: no process of the stack exited or was restarted.
    fault.stack.assert_running()
    assert fault.restarts == []
    print(
        f"\n{ENROLLMENTS} enrollments in {elapsed:.0f}s on a 3-broker cluster; {events}; "
        f"records on the log {sum(on_log.values.values())} for {len(on_log.values)} face ids; "
        f"retries by cause {tally.retried}"
    )
