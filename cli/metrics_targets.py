"""Where each process of the local stack serves /metrics, as a Prometheus file_sd target list.

The API serves /metrics on its own port; every other process gets a port of its own from
FACESTREAM_METRICS_PORT up (9101 up when unset), so that no two children of one stack bind the
same port. `facestream stack run` writes the list to var/prometheus/targets-<api port>.json;
scripts/services/prometheus.sh points a real Prometheus at every such file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_BASE_PORT = 9101
TARGETS_DIR = Path("var/prometheus")

# The Prometheus job a process's metrics belong to (the names deploy/prometheus uses).
JOBS = {"api": "facestream-api", "replica": "facestream-replicas"}


def job_of(name: str) -> str:
    return JOBS.get(name.split("-")[0], "facestream-workers")


def assign_ports(names: Sequence[str], base_port: int) -> dict[str, int]:
    """One metrics port per process but the API (0: the API has its own /metrics route)."""
    base = base_port or DEFAULT_BASE_PORT
    others = [n for n in names if n != "api"]
    return {"api": 0} | {name: base + i for i, name in enumerate(others)}


def file_sd(ports: dict[str, int], *, api_host: str, api_port: int) -> list[dict[str, Any]]:
    """The target groups: one per process, labelled with its job and service name."""
    groups = []
    for name, port in ports.items():
        host, target_port = (api_host, api_port) if name == "api" else ("127.0.0.1", port)
        groups.append(
            {"targets": [f"{host}:{target_port}"], "labels": {"job": job_of(name), "service": name}}
        )
    return groups


def write_targets(groups: list[dict[str, Any]], api_port: int, directory: Path = TARGETS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"targets-{api_port}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=2) + "\n")
    tmp.replace(path)
    return path
