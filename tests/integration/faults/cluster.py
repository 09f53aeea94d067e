"""The three-node KRaft cluster of scripts/services/kafka-cluster.sh, driven from a test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.fixtures.services import SCRIPTS
from tests.integration.pipeline.stack import REPO

SCRIPT = SCRIPTS / "kafka-cluster.sh"


@dataclass(frozen=True)
class KafkaCluster:
    base_port: int

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "FACESTREAM_KAFKA_CLUSTER_PORT": str(self.base_port)}

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.base_port + n}" for n in range(3))

    @property
    def state_dir(self) -> str:
        return str(REPO / "var" / f"kafka-cluster-{self.base_port}")

    def run(self, *args: str, timeout: float = 240) -> str:
        done = subprocess.run(
            [str(SCRIPT), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode:
            raise AssertionError(f"kafka-cluster.sh {' '.join(args)} failed: {done.stderr[-3000:]}")
        return done.stdout.strip()

    def leader(self) -> int:
        return int(self.run("leader"))

    def kill(self, node: int) -> None:
        self.run("kill", str(node))

    def start_node(self, node: int) -> None:
        self.run("start-node", str(node))


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@contextmanager
def running_cluster(base_port: int) -> Iterator[KafkaCluster]:
    """A fresh cluster on base_port..+2 (controllers +100..+102), removed afterwards."""
    cluster = KafkaCluster(base_port)
    taken = [p for n in range(3) for p in (base_port + n, base_port + 100 + n) if not _port_free(p)]
    assert not taken, f"ports {taken} are taken: set FACESTREAM_KAFKA_CLUSTER_PORT to a free range"
    shutil.rmtree(cluster.state_dir, ignore_errors=True)
    try:
        cluster.run("start")
        yield cluster
    finally:
        cluster.run("stop", timeout=120)
        shutil.rmtree(cluster.state_dir, ignore_errors=True)
